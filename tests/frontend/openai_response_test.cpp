// The OpenAI response writers: each shape parsed back with simdjson and checked field by field;
// bytes that are not valid UTF-8 and non-finite logprobs still give valid JSON.
#include "frontend/http/openai_response.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace troupe::frontend::http {
namespace {

namespace dom = simdjson::dom;

// Parses `json`; the parser keeps the document alive, so each test holds its own.
dom::element parse(dom::parser& parser, const std::string& json) {
  dom::element doc;
  const auto err = parser.parse(json).get(doc);
  EXPECT_EQ(err, simdjson::SUCCESS) << simdjson::error_message(err) << "\n" << json;
  return doc;
}

std::string_view str(dom::element v) { return v.get_string().value(); }
int64_t num(dom::element v) { return v.get_int64().value(); }
double dbl(dom::element v) { return v.get_double().value(); }

response_meta meta(api_endpoint endpoint, bool logprobs = false) {
  response_meta m;
  m.id = endpoint == api_endpoint::chat_completions ? "chatcmpl-abc" : "cmpl-abc";
  m.created = 1700000000;
  m.model = "tiny";
  m.endpoint = endpoint;
  m.logprobs = logprobs;
  return m;
}

TEST(openai_response, completion_body) {
  std::vector<choice_delta> choices(2);
  choices[0].text = "Hello \"world\"\n";
  choices[0].finish_reason = "length";
  choices[1].index = 1;
  choices[1].text = "Bye";
  choices[1].finish_reason = "stop";
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::completions), choices, {5, 7}));
  EXPECT_EQ(str(doc["id"]), "cmpl-abc");
  EXPECT_EQ(str(doc["object"]), "text_completion");
  EXPECT_EQ(num(doc["created"]), 1700000000);
  EXPECT_EQ(str(doc["model"]), "tiny");
  const dom::array arr = doc["choices"].get_array().value();
  ASSERT_EQ(arr.size(), 2u);
  EXPECT_EQ(num(doc["choices"].at(0)["index"]), 0);
  EXPECT_EQ(str(doc["choices"].at(0)["text"]), "Hello \"world\"\n");
  EXPECT_TRUE(doc["choices"].at(0)["logprobs"].is_null());
  EXPECT_EQ(str(doc["choices"].at(0)["finish_reason"]), "length");
  EXPECT_EQ(num(doc["choices"].at(1)["index"]), 1);
  EXPECT_EQ(str(doc["choices"].at(1)["finish_reason"]), "stop");
  EXPECT_EQ(num(doc["usage"]["prompt_tokens"]), 5);
  EXPECT_EQ(num(doc["usage"]["completion_tokens"]), 7);
  EXPECT_EQ(num(doc["usage"]["total_tokens"]), 12);
}

TEST(openai_response, completion_logprobs) {
  choice_delta c;
  c.text = "Hi there";
  c.text_offset = 10;
  c.logprobs = {{"Hi", -0.5f, {{"Hi", -0.5f}, {"Hey", -1.25f}}},
                {" there", -std::numeric_limits<float>::infinity(), {}}};
  c.finish_reason = "stop";
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::completions, true), {&c, 1}, {1, 2}));
  const auto lp = doc["choices"].at(0)["logprobs"];
  EXPECT_EQ(str(lp["tokens"].at(0)), "Hi");
  EXPECT_EQ(str(lp["tokens"].at(1)), " there");
  EXPECT_EQ(dbl(lp["token_logprobs"].at(0)), -0.5);
  EXPECT_EQ(dbl(lp["token_logprobs"].at(1)), -9999.0);  // -inf, as vLLM writes it
  EXPECT_EQ(dbl(lp["top_logprobs"].at(0)["Hi"]), -0.5);
  EXPECT_EQ(dbl(lp["top_logprobs"].at(0)["Hey"]), -1.25);
  EXPECT_TRUE(lp["top_logprobs"].at(1).is_null());
  EXPECT_EQ(num(lp["text_offset"].at(0)), 10);
  EXPECT_EQ(num(lp["text_offset"].at(1)), 12);
}

TEST(openai_response, completion_logprobs_with_nothing_generated_are_empty_arrays) {
  choice_delta c;
  c.finish_reason = "length";
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::completions, true), {&c, 1}, {1, 0}));
  EXPECT_EQ(doc["choices"].at(0)["logprobs"]["tokens"].get_array().value().size(), 0u);
}

TEST(openai_response, chat_body) {
  choice_delta c;
  c.text = "I am fine.";
  c.finish_reason = "stop";
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::chat_completions), {&c, 1}, {3, 4}));
  EXPECT_EQ(str(doc["object"]), "chat.completion");
  EXPECT_EQ(str(doc["id"]), "chatcmpl-abc");
  const auto choice = doc["choices"].at(0);
  EXPECT_EQ(num(choice["index"]), 0);
  EXPECT_EQ(str(choice["message"]["role"]), "assistant");
  EXPECT_EQ(str(choice["message"]["content"]), "I am fine.");
  EXPECT_TRUE(choice["logprobs"].is_null());
  EXPECT_EQ(str(choice["finish_reason"]), "stop");
  EXPECT_EQ(num(doc["usage"]["total_tokens"]), 7);
}

TEST(openai_response, chat_logprobs_carry_exact_bytes) {
  choice_delta c;
  c.text = "\xf0\x9f\x99\x82";  // one character split over two tokens
  c.logprobs = {{"\xf0\x9f", -0.25f, {{"\xf0\x9f", -0.25f}, {"\xe2\x80", -3.0f}}}, {"\x99\x82", -0.5f, {}}};
  c.finish_reason = "stop";
  dom::parser parser;
  const std::string json = response_json(meta(api_endpoint::chat_completions, true), {&c, 1}, {1, 2});
  const auto doc = parse(parser, json);
  const auto content = doc["choices"].at(0)["logprobs"]["content"];
  const auto first = content.at(0);
  EXPECT_EQ(str(first["token"]), "\xef\xbf\xbd");  // U+FFFD for the partial character
  EXPECT_EQ(dbl(first["logprob"]), -0.25);
  const std::vector<int64_t> want_bytes{0xf0, 0x9f};
  std::vector<int64_t> bytes;
  const dom::array byte_array = first["bytes"].get_array().value();
  for (dom::element b : byte_array) bytes.push_back(num(b));
  EXPECT_EQ(bytes, want_bytes);
  EXPECT_EQ(first["top_logprobs"].get_array().value().size(), 2u);
  EXPECT_EQ(dbl(first["top_logprobs"].at(1)["logprob"]), -3.0);
  EXPECT_EQ(num(first["top_logprobs"].at(1)["bytes"].at(0)), 0xe2);
  const auto second = content.at(1);
  EXPECT_EQ(num(second["bytes"].at(1)), 0x82);
  EXPECT_EQ(second["top_logprobs"].get_array().value().size(), 0u);
  EXPECT_EQ(str(doc["choices"].at(0)["message"]["content"]), "\xf0\x9f\x99\x82");
}

TEST(openai_response, invalid_utf8_everywhere_yields_valid_json) {
  const std::string junk = "a\xff\xfe\xc3\x28\xe2\x82\xed\xa0\x80\xf4\x90\x80\x80z\x01\"\\";
  choice_delta c;
  c.text = junk;
  c.logprobs = {{junk, std::numeric_limits<float>::quiet_NaN(), {{junk, 1.0f}, {"\xff", -1e30f}, {"\xfe", -2.0f}}}};
  c.finish_reason = junk;
  for (auto endpoint : {api_endpoint::completions, api_endpoint::chat_completions}) {
    auto m = meta(endpoint, true);
    m.model = junk;
    m.id = junk;
    for (const std::string& json :
         {response_json(m, {&c, 1}, {1, 1}), chunk_json(m, c, true), chunk_json(m, c, false), usage_chunk_json(m, {})}) {
      dom::parser parser;
      dom::element doc;
      EXPECT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
    }
  }
  // Completions: two alternatives that both read as U+FFFD keep one key, the first.
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::completions, true), {&c, 1}, {1, 1}));
  const dom::object top = doc["choices"].at(0)["logprobs"]["top_logprobs"].at(0).get_object().value();
  std::set<std::string_view> keys;
  size_t count = 0;
  for (auto [key, value] : top) {
    keys.insert(key);
    ++count;
  }
  EXPECT_EQ(keys.size(), count);
  EXPECT_EQ(dbl(top["\xef\xbf\xbd"]), -9999.0);  // -1e30 clamps to vLLM's floor
}

TEST(openai_response, completion_chunks) {
  choice_delta c;
  c.index = 2;
  c.text = " tok";
  dom::parser parser;
  auto doc = parse(parser, chunk_json(meta(api_endpoint::completions), c, false));
  EXPECT_EQ(str(doc["object"]), "text_completion");
  EXPECT_EQ(num(doc["choices"].at(0)["index"]), 2);
  EXPECT_EQ(str(doc["choices"].at(0)["text"]), " tok");
  EXPECT_TRUE(doc["choices"].at(0)["logprobs"].is_null());
  EXPECT_TRUE(doc["choices"].at(0)["finish_reason"].is_null());
  EXPECT_EQ(doc["usage"].error(), simdjson::NO_SUCH_FIELD);

  c.logprobs = {{" tok", -0.125f, {{" tok", -0.125f}}}};
  c.text_offset = 4;
  dom::parser parser2;
  doc = parse(parser2, chunk_json(meta(api_endpoint::completions, true), c, false));
  EXPECT_EQ(num(doc["choices"].at(0)["logprobs"]["text_offset"].at(0)), 4);
  EXPECT_EQ(dbl(doc["choices"].at(0)["logprobs"]["token_logprobs"].at(0)), -0.125);
}

TEST(openai_response, chat_chunks) {
  const auto m = meta(api_endpoint::chat_completions, true);
  choice_delta first;  // the opening chunk: role and empty content
  dom::parser p1;
  auto doc = parse(p1, chunk_json(m, first, true));
  EXPECT_EQ(str(doc["object"]), "chat.completion.chunk");
  auto delta = doc["choices"].at(0)["delta"];
  EXPECT_EQ(str(delta["role"]), "assistant");
  EXPECT_EQ(str(delta["content"]), "");
  EXPECT_TRUE(doc["choices"].at(0)["logprobs"].is_null());
  EXPECT_TRUE(doc["choices"].at(0)["finish_reason"].is_null());

  choice_delta mid;
  mid.text = "Hel";
  mid.logprobs = {{"Hel", -0.5f, {}}};
  dom::parser p2;
  doc = parse(p2, chunk_json(m, mid, false));
  delta = doc["choices"].at(0)["delta"];
  EXPECT_EQ(delta["role"].error(), simdjson::NO_SUCH_FIELD);
  EXPECT_EQ(str(delta["content"]), "Hel");
  EXPECT_EQ(str(doc["choices"].at(0)["logprobs"]["content"].at(0)["token"]), "Hel");

  choice_delta last;
  last.finish_reason = "length";
  dom::parser p3;
  const std::string json = chunk_json(m, last, false);
  doc = parse(p3, json);
  EXPECT_EQ(doc["choices"].at(0)["delta"].get_object().value().size(), 0u);  // "delta":{}
  EXPECT_EQ(str(doc["choices"].at(0)["finish_reason"]), "length");
  EXPECT_NE(json.find("\"delta\":{}"), std::string::npos);
}

TEST(openai_response, usage_chunk_and_sse) {
  dom::parser parser;
  const std::string json = usage_chunk_json(meta(api_endpoint::chat_completions), {10, 20});
  const auto doc = parse(parser, json);
  EXPECT_EQ(str(doc["object"]), "chat.completion.chunk");
  EXPECT_EQ(doc["choices"].get_array().value().size(), 0u);
  EXPECT_EQ(num(doc["usage"]["prompt_tokens"]), 10);
  EXPECT_EQ(num(doc["usage"]["completion_tokens"]), 20);
  EXPECT_EQ(num(doc["usage"]["total_tokens"]), 30);
  dom::parser p2;
  EXPECT_EQ(str(parse(p2, usage_chunk_json(meta(api_endpoint::completions), {1, 1}))["object"]), "text_completion");

  EXPECT_EQ(sse_data("{\"a\":1}"), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done, "data: [DONE]\n\n");
}

TEST(openai_response, models_list) {
  const model_card models[] = {{"tiny", 1700000000, "troupe", 2048}, {"other", 5, "me", 0}};
  dom::parser parser;
  const auto doc = parse(parser, models_json(models));
  EXPECT_EQ(str(doc["object"]), "list");
  ASSERT_EQ(doc["data"].get_array().value().size(), 2u);
  const auto m = doc["data"].at(0);
  EXPECT_EQ(str(m["id"]), "tiny");
  EXPECT_EQ(str(m["object"]), "model");
  EXPECT_EQ(num(m["created"]), 1700000000);
  EXPECT_EQ(str(m["owned_by"]), "troupe");
  EXPECT_EQ(num(m["max_model_len"]), 2048);
  EXPECT_EQ(str(doc["data"].at(1)["owned_by"]), "me");
  dom::parser p2;
  EXPECT_EQ(parse(p2, models_json({}))["data"].get_array().value().size(), 0u);
}

TEST(openai_response, logprob_formatting_round_trips) {
  choice_delta c;
  const float values[] = {-0.1f, -1e-8f, -123.456789f, 0.0f, -0.0f, -9999.0f, -10000.0f};
  for (float v : values) c.logprobs.push_back({"t", v, {}});
  dom::parser parser;
  const auto doc = parse(parser, response_json(meta(api_endpoint::completions, true), {&c, 1}, {}));
  const auto lp = doc["choices"].at(0)["logprobs"]["token_logprobs"];
  for (size_t i = 0; i < std::size(values); ++i) {
    const float want = std::max(values[i], -9999.0f);
    EXPECT_EQ(static_cast<float>(dbl(lp.at(i))), want) << i;
  }
}

TEST(openai_response, request_ids_are_random_hex_and_thread_safe) {
  const std::string id = make_request_id("chatcmpl-");
  ASSERT_EQ(id.size(), 9u + 24u);
  EXPECT_EQ(id.rfind("chatcmpl-", 0), 0u);
  EXPECT_EQ(id.find_first_not_of("0123456789abcdef", 9), std::string::npos);
  std::vector<std::vector<std::string>> per_thread(4);
  std::vector<std::thread> threads;
  for (auto& ids : per_thread) {
    threads.emplace_back([&ids] {
      for (int i = 0; i < 1000; ++i) ids.push_back(make_request_id("cmpl-"));
    });
  }
  for (auto& t : threads) t.join();
  std::set<std::string> all;
  for (const auto& ids : per_thread) all.insert(ids.begin(), ids.end());
  EXPECT_EQ(all.size(), 4000u);
}

}  // namespace
}  // namespace troupe::frontend::http
