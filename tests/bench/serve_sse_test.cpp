// The event-stream side of `troupe bench serve`: SSE framing (every line ending, comments, pieces
// split at every byte boundary) and how a response stream becomes one request's result.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "bench/serve_client.hpp"

namespace troupe::bench {
namespace {

std::vector<std::string> events_of(const std::vector<std::string>& pieces) {
  std::vector<std::string> out;
  sse_parser p([&out](std::string_view d) { out.emplace_back(d); });
  for (const std::string& s : pieces) p.feed(s);
  return out;
}

// A completions stream as vLLM writes it: content chunks with "usage": null, a finish chunk, the
// usage chunk with empty choices, then [DONE]; CRLF line ends and a keep-alive comment mixed in.
const std::string completion_stream =
    "data: {\"id\":\"c1\",\"object\":\"text_completion\",\"choices\":[{\"index\":0,\"text\":\"Hello\","
    "\"finish_reason\":null}],\"usage\":null}\r\n\r\n"
    ": keep-alive\r\n\r\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"text\":\" wor\\u00e9ld\",\"finish_reason\":null}]}\n\n"
    "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"text\":\"!\",\"finish_reason\":\"length\"}]}\r\r"
    "data: {\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":3,"
    "\"total_tokens\":10}}\n\n"
    "data: [DONE]\n\n";

TEST(sse_parser, events_end_at_blank_lines) {
  EXPECT_EQ(events_of({"data: a\n\ndata: b\n\n"}), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(events_of({"data: a\n"}), std::vector<std::string>{});  // no blank line yet: no event
}

TEST(sse_parser, fields_comments_and_line_ends) {
  EXPECT_EQ(events_of({"data: x\ndata: y\n\n"}), std::vector<std::string>{"x\ny"});
  EXPECT_EQ(events_of({"data: x\r\ndata:y\r\n\r\n"}), std::vector<std::string>{"x\ny"});
  EXPECT_EQ(events_of({"data: x\rdata:  y\r\r"}), std::vector<std::string>{"x\n y"});  // one space is eaten
  EXPECT_EQ(events_of({": comment\n\nevent: delta\nid: 4\nretry: 10\ndata: z\n\n"}), std::vector<std::string>{"z"});
  EXPECT_EQ(events_of({"data\n\n"}), std::vector<std::string>{""});  // an empty data field is an event
  EXPECT_EQ(events_of({"event: ping\n\n\n\n"}), std::vector<std::string>{});  // no data: no event
  EXPECT_EQ(events_of({"data: a:b: c\n\n"}), std::vector<std::string>{"a:b: c"});
}

TEST(sse_parser, split_at_every_byte_boundary) {
  const std::vector<std::string> whole = events_of({completion_stream});
  ASSERT_EQ(whole.size(), 5u);
  EXPECT_EQ(whole.back(), "[DONE]");
  for (size_t cut = 0; cut <= completion_stream.size(); ++cut)
    ASSERT_EQ(events_of({completion_stream.substr(0, cut), completion_stream.substr(cut)}), whole) << "cut at " << cut;
  std::vector<std::string> bytes;
  for (const char c : completion_stream) bytes.emplace_back(1, c);
  EXPECT_EQ(events_of(bytes), whole);
}

TEST(sse_parser, knows_when_the_stream_stops_inside_an_event) {
  sse_parser p([](std::string_view) {});
  p.feed("data: {\"a\":1}\n\n");
  EXPECT_FALSE(p.in_event());
  p.feed("data: {\"a\"");
  EXPECT_TRUE(p.in_event());
  p.feed("}\n");
  EXPECT_TRUE(p.in_event());
  p.feed("\n");
  EXPECT_FALSE(p.in_event());
}

TEST(sse_parser, caps_an_event) {
  int events = 0;
  sse_parser p([&events](std::string_view) { ++events; });
  const std::string mib(1 << 20, 'x');
  p.feed("data: ");
  for (int i = 0; i < 17 && !p.overflowed(); ++i) p.feed(mib);
  EXPECT_TRUE(p.overflowed());
  p.feed("\n\ndata: a\n\n");
  EXPECT_EQ(events, 0);
}

TEST(parse_stream_event, reads_text_usage_done_and_errors) {
  auto e = parse_stream_event(endpoint_kind::completions, R"({"choices":[{"text":"hi"}],"usage":null})");
  EXPECT_TRUE(e.content);
  EXPECT_FALSE(e.completion_tokens);
  e = parse_stream_event(endpoint_kind::completions, R"({"choices":[{"text":"","finish_reason":"length"}]})");
  EXPECT_FALSE(e.content);
  e = parse_stream_event(endpoint_kind::chat, R"({"choices":[{"delta":{"role":"assistant","content":""}}]})");
  EXPECT_FALSE(e.content);
  e = parse_stream_event(endpoint_kind::chat, R"({"choices":[{"delta":{"content":"x"}}]})");
  EXPECT_TRUE(e.content);
  e = parse_stream_event(endpoint_kind::chat, R"({"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":9}})");
  EXPECT_FALSE(e.content);
  EXPECT_EQ(e.completion_tokens, 9);
  EXPECT_EQ(e.prompt_tokens, 5);
  EXPECT_TRUE(parse_stream_event(endpoint_kind::chat, " [DONE] ").done);
  EXPECT_EQ(parse_stream_event(endpoint_kind::chat, R"({"error":{"message":"KV cache full","code":503}})").error,
            "KV cache full");
  EXPECT_EQ(parse_stream_event(endpoint_kind::chat, R"({"error":"boom"})").error, "boom");
  EXPECT_EQ(parse_stream_event(endpoint_kind::chat, R"({"error":{"code":1}})").error, R"({"code":1})");
  EXPECT_TRUE(parse_stream_event(endpoint_kind::chat, "{\"choices\":[").error);
  EXPECT_TRUE(parse_stream_event(endpoint_kind::chat, "[1,2]").error);
  EXPECT_FALSE(parse_stream_event(endpoint_kind::chat, R"({"error":null,"choices":[]})").error);
}

TEST(error_message_of, reads_openai_error_bodies) {
  EXPECT_EQ(error_message_of(R"({"error":{"message":"model not found","type":"invalid_request_error"}})"),
            "model not found");
  EXPECT_EQ(error_message_of("Bad Gateway\nmore"), "Bad Gateway");
  EXPECT_EQ(error_message_of(""), "");
  EXPECT_EQ(error_message_of("<!DOCTYPE HTML>\n<html>...</html>"), "");
}

TEST(stream_reader, times_content_events_and_takes_usage) {
  stream_reader r(endpoint_kind::completions);
  // Each event lands in its own piece, at its own time.
  std::vector<std::string> pieces;
  for (size_t start = 0; start < completion_stream.size();) {
    size_t end = completion_stream.find("data:", start + 1);
    if (end == std::string::npos) end = completion_stream.size();
    pieces.push_back(completion_stream.substr(start, end - start));
    start = end;
  }
  ASSERT_EQ(pieces.size(), 5u);
  for (size_t i = 0; i < pieces.size(); ++i) r.feed(pieces[i], 0.1 * double(i + 1));
  const request_result res = r.finish(0.6, 99);
  EXPECT_TRUE(res.success) << res.error;
  ASSERT_EQ(res.chunk_times_s.size(), 3u);
  EXPECT_DOUBLE_EQ(res.chunk_times_s[0], 0.1);
  EXPECT_DOUBLE_EQ(res.chunk_times_s[2], 0.3);
  EXPECT_DOUBLE_EQ(res.e2e_s, 0.6);
  EXPECT_EQ(res.output_tokens, 3);
  EXPECT_EQ(res.prompt_tokens, 7);
}

TEST(stream_reader, same_result_for_every_split) {
  for (size_t cut = 0; cut <= completion_stream.size(); ++cut) {
    stream_reader r(endpoint_kind::completions);
    r.feed(completion_stream.substr(0, cut), 1);
    r.feed(completion_stream.substr(cut), 2);
    const request_result res = r.finish(3, 0);
    ASSERT_TRUE(res.success) << "cut at " << cut << ": " << res.error;
    ASSERT_EQ(res.chunk_times_s.size(), 3u);
    ASSERT_EQ(res.output_tokens, 3);
  }
}

TEST(stream_reader, chat_without_usage_counts_events) {
  stream_reader r(endpoint_kind::chat);
  r.feed("data: {\"choices\":[{\"delta\":{\"role\":\"assistant\",\"content\":\"\"}}]}\n\n", 0.01);
  r.feed("data: {\"choices\":[{\"delta\":{\"content\":\"a\"}}]}\n\n", 0.2);
  r.feed("data: {\"choices\":[{\"delta\":{\"content\":\"b\"}}]}\n\ndata: [DONE]\n\n", 0.3);
  const request_result res = r.finish(0.3, 12);
  EXPECT_TRUE(res.success);
  EXPECT_EQ(res.chunk_times_s, (std::vector<double>{0.2, 0.3}));
  EXPECT_EQ(res.output_tokens, 2);
  EXPECT_EQ(res.prompt_tokens, 12);
}

TEST(stream_reader, failures) {
  {
    stream_reader r(endpoint_kind::completions);
    r.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: {\"error\":{\"message\":\"worker died\"}}\n\n", 0.1);
    EXPECT_TRUE(r.failed());
    r.feed("data: [DONE]\n\n", 0.2);  // nothing after an error counts
    const request_result res = r.finish(0.2, 0);
    EXPECT_FALSE(res.success);
    EXPECT_EQ(res.error, "worker died");
  }
  {
    stream_reader r(endpoint_kind::completions);
    r.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\n", 0.1);
    const request_result res = r.finish(0.2, 0);
    EXPECT_FALSE(res.success);
    EXPECT_EQ(res.error, "the stream ended without data: [DONE]");
  }
  {
    stream_reader r(endpoint_kind::completions);
    r.feed("data: {\"choices\":[{\"text\":\"a\"}]}\n\ndata: [DO", 0.1);
    EXPECT_EQ(r.finish(0.2, 0).error, "the stream was cut inside an event");
  }
  {
    stream_reader r(endpoint_kind::completions);
    r.feed("data: <html>oops</html>\n\n", 0.1);
    EXPECT_EQ(r.finish(0.2, 0).error.rfind("malformed event: <html>", 0), 0u);
  }
}

}  // namespace
}  // namespace troupe::bench
