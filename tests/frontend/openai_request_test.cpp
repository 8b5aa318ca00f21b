// The OpenAI request parser: every accepted prompt and message form, the defaults, and for every
// rule a rejection that names the field (param) and says what was allowed.
#include "frontend/http/openai_request.hpp"

#include <gtest/gtest.h>
#include <simdjson.h>

#include <string>

namespace troupe::frontend::http {
namespace {

constexpr auto cmpl = api_endpoint::completions;
constexpr auto chat = api_endpoint::chat_completions;

api_request accept(api_endpoint ep, std::string_view body) {
  auto r = parse_api_request(ep, body);
  if (const auto* e = std::get_if<api_error>(&r)) {
    ADD_FAILURE() << "rejected: " << e->message << " (param " << e->param << ")\nbody: " << body;
    return {};
  }
  return std::get<api_request>(std::move(r));
}

api_error refuse(api_endpoint ep, std::string_view body) {
  auto r = parse_api_request(ep, body);
  if (std::holds_alternative<api_request>(r)) {
    ADD_FAILURE() << "accepted: " << body;
    return {};
  }
  return std::get<api_error>(std::move(r));
}

// A completions body with `extra` fields after model and prompt.
std::string completion(std::string_view extra) {
  return std::string(R"({"model":"m","prompt":"hi")") + (extra.empty() ? "" : ",") + std::string(extra) + "}";
}
std::string chat_body(std::string_view extra) {
  return std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}])") + (extra.empty() ? "" : ",") +
         std::string(extra) + "}";
}

TEST(openai_request, completion_defaults) {
  const auto r = accept(cmpl, R"({"model":"tiny","prompt":"Hello"})");
  EXPECT_EQ(r.endpoint, cmpl);
  EXPECT_EQ(r.model, "tiny");
  ASSERT_TRUE(r.prompt_text);
  EXPECT_EQ(*r.prompt_text, "Hello");
  EXPECT_FALSE(r.prompt_tokens);
  EXPECT_TRUE(r.messages.empty());
  EXPECT_FALSE(r.max_tokens);
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_EQ(r.sampling.top_p, 1.0f);
  EXPECT_EQ(r.sampling.top_k, 0);
  EXPECT_EQ(r.sampling.min_p, 0.0f);
  EXPECT_EQ(r.sampling.repetition_penalty, 1.0f);
  EXPECT_EQ(r.sampling.presence_penalty, 0.0f);
  EXPECT_EQ(r.sampling.frequency_penalty, 0.0f);
  EXPECT_FALSE(r.sampling.seed);
  EXPECT_EQ(r.sampling.logprobs, -1);
  EXPECT_EQ(r.n, 1);
  EXPECT_TRUE(r.stop.empty());
  EXPECT_TRUE(r.stop_token_ids.empty());
  EXPECT_FALSE(r.ignore_eos);
  EXPECT_TRUE(r.skip_special_tokens);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.include_usage);
  EXPECT_TRUE(r.user.empty());
  EXPECT_TRUE(r.cache);
}

TEST(openai_request, prompt_forms) {
  auto r = accept(cmpl, R"({"model":"m","prompt":["one string"]})");
  ASSERT_TRUE(r.prompt_text);
  EXPECT_EQ(*r.prompt_text, "one string");

  r = accept(cmpl, R"({"model":"m","prompt":[1,2,3]})");
  ASSERT_TRUE(r.prompt_tokens);
  EXPECT_EQ(*r.prompt_tokens, (std::vector<int32_t>{1, 2, 3}));
  EXPECT_FALSE(r.prompt_text);

  r = accept(cmpl, R"({"model":"m","prompt":[[0,2147483647]]})");
  ASSERT_TRUE(r.prompt_tokens);
  EXPECT_EQ(*r.prompt_tokens, (std::vector<int32_t>{0, 2147483647}));

  r = accept(cmpl, R"({"model":"m","prompt":"caf\u00e9 \ud83d\ude42\n"})");
  EXPECT_EQ(*r.prompt_text, "caf\xc3\xa9 \xf0\x9f\x99\x82\n");
}

TEST(openai_request, prompt_rejections) {
  struct bad_case {
    std::string body, param, message;
  };
  const bad_case cases[] = {
      {R"({"model":"m"})", "prompt", "'prompt' is required"},
      {R"({"model":"m","prompt":null})", "prompt", "'prompt' is required"},
      {R"({"model":"m","prompt":""})", "prompt", "'prompt' must not be empty"},
      {R"({"model":"m","prompt":[]})", "prompt", "'prompt' must not be empty"},
      {R"({"model":"m","prompt":[""]})", "prompt", "'prompt' must not be empty"},
      {R"({"model":"m","prompt":[[]]})", "prompt", "'prompt' must not be empty"},
      {R"({"model":"m","prompt":["a","b"]})", "prompt", "batched prompts are not supported; send one prompt per request"},
      {R"({"model":"m","prompt":[[1],[2]]})", "prompt", "batched prompts are not supported; send one prompt per request"},
      {R"({"model":"m","prompt":[1,-2]})", "prompt[1]", "'prompt[1]' must be between 0 and 2147483647, got -2"},
      {R"({"model":"m","prompt":[1,2147483648]})", "prompt[1]", "'prompt[1]' must be between 0 and 2147483647, got 2147483648"},
      {R"({"model":"m","prompt":[1,2.5]})", "prompt[1]", "'prompt[1]' must be an integer, got 2.5"},
      {R"({"model":"m","prompt":[1,"a"]})", "prompt[1]", "'prompt[1]' must be an integer, got string"},
      {R"({"model":"m","prompt":[[1,-1]]})", "prompt[0][1]", "'prompt[0][1]' must be between 0 and 2147483647, got -1"},
      {R"({"model":"m","prompt":[true]})", "prompt[0]", "got boolean"},
      {R"({"model":"m","prompt":42})", "prompt", "'prompt' must be a string, an array of token ids"},
      {R"({"model":"m","prompt":{"text":"a"}})", "prompt", "got object"},
  };
  for (const auto& c : cases) {
    const auto e = refuse(cmpl, c.body);
    EXPECT_EQ(e.status, 400) << c.body;
    EXPECT_EQ(e.type, "invalid_request_error");
    EXPECT_EQ(e.param, c.param) << c.body;
    EXPECT_NE(e.message.find(c.message), std::string::npos) << c.body << " -> " << e.message;
  }
}

TEST(openai_request, model_is_required) {
  EXPECT_EQ(refuse(cmpl, R"({"prompt":"a"})").message, "'model' is required");
  EXPECT_EQ(refuse(chat, R"({"model":null,"messages":[]})").param, "model");
  EXPECT_EQ(refuse(cmpl, R"({"model":"","prompt":"a"})").message, "'model' must not be empty");
  EXPECT_EQ(refuse(cmpl, R"({"model":7,"prompt":"a"})").message, "'model' must be a string, got number");
}

TEST(openai_request, malformed_bodies) {
  for (std::string_view body : {"", "{", "{\"model\":", "nul", "{\"model\":\"m\",}", "[1,2", "{\"a\":1} x"}) {
    const auto e = refuse(cmpl, body);
    EXPECT_EQ(e.status, 400);
    EXPECT_EQ(e.message.rfind("malformed JSON: ", 0), 0u) << body << " -> " << e.message;
    EXPECT_TRUE(e.param.empty());
  }
  // Invalid UTF-8 inside a string.
  EXPECT_EQ(refuse(cmpl, "{\"model\":\"m\",\"prompt\":\"\xff\"}").message.rfind("malformed JSON: ", 0), 0u);
  // Integers beyond 64 bits and doubles beyond double's range: simdjson refuses the number itself.
  for (std::string_view body : {R"({"model":"m","prompt":"a","max_tokens":100000000000000000000})",
                                R"({"model":"m","prompt":"a","temperature":1e400})",
                                R"({"model":"m","prompt":"a","seed":-9223372036854775809})"}) {
    EXPECT_EQ(refuse(cmpl, body).message, "malformed JSON: Problem while parsing a number") << body;
  }
  EXPECT_EQ(refuse(cmpl, "[]").message, "request body must be a JSON object, got array");
  EXPECT_EQ(refuse(chat, "\"text\"").message, "request body must be a JSON object, got string");
  EXPECT_EQ(refuse(chat, "null").message, "request body must be a JSON object, got null");
}

TEST(openai_request, nesting_depth_is_bounded) {
  const auto nested = [](size_t depth) {
    return std::string(R"({"model":"m","prompt":"a","x":)") + std::string(depth, '[') + std::string(depth, ']') + "}";
  };
  // The body object is one level: 62 arrays inside stay within 64.
  accept(cmpl, nested(max_request_depth - 2));
  const auto e = refuse(cmpl, nested(max_request_depth + 1));
  EXPECT_EQ(e.message, "malformed JSON: nested deeper than 64 levels");
  const auto deep = refuse(cmpl, nested(100000));
  EXPECT_EQ(deep.message, "malformed JSON: nested deeper than 64 levels");
}

TEST(openai_request, unknown_fields_ignored_and_null_is_absent) {
  const auto r = accept(cmpl, completion(R"("echo":false,"suffix":null,"logit_bias":{"1":2},"temperature":null,)"
                                         R"("max_tokens":null,"stop":null,"n":null,"seed":null,"stream_options":null,)"
                                         R"("messages":"not read for completions")"));
  EXPECT_EQ(r.sampling.temperature, 1.0f);
  EXPECT_FALSE(r.max_tokens);
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.sampling.seed);
}

TEST(openai_request, every_field_read) {
  const auto r = accept(cmpl, completion(R"("max_tokens":32,"temperature":0.5,"top_p":0.9,"top_k":40,"min_p":0.05,)"
                                         R"("presence_penalty":-1.5,"frequency_penalty":2,"repetition_penalty":1.1,)"
                                         R"("seed":-1,"logprobs":5,"n":3,"stop":["\n\n","END"],"stop_token_ids":[2,7],)"
                                         R"("ignore_eos":true,"skip_special_tokens":false,"stream":true,)"
                                         R"("stream_options":{"include_usage":true},"user":"u-1","cache":false)"));
  EXPECT_EQ(r.max_tokens, 32);
  EXPECT_EQ(r.sampling.temperature, 0.5f);
  EXPECT_EQ(r.sampling.top_p, 0.9f);
  EXPECT_EQ(r.sampling.top_k, 40);
  EXPECT_EQ(r.sampling.min_p, 0.05f);
  EXPECT_EQ(r.sampling.presence_penalty, -1.5f);
  EXPECT_EQ(r.sampling.frequency_penalty, 2.0f);
  EXPECT_EQ(r.sampling.repetition_penalty, 1.1f);
  ASSERT_TRUE(r.sampling.seed);
  EXPECT_EQ(*r.sampling.seed, ~uint64_t{0});
  EXPECT_EQ(r.sampling.logprobs, 5);
  EXPECT_EQ(r.n, 3);
  EXPECT_EQ(r.stop, (std::vector<std::string>{"\n\n", "END"}));
  EXPECT_EQ(r.stop_token_ids, (std::vector<int32_t>{2, 7}));
  EXPECT_TRUE(r.ignore_eos);
  EXPECT_FALSE(r.skip_special_tokens);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(r.user, "u-1");
  EXPECT_FALSE(r.cache);
}

TEST(openai_request, boundary_values_accepted) {
  auto r = accept(cmpl, completion(R"("temperature":0,"top_p":1,"min_p":1,"presence_penalty":2,"frequency_penalty":-2)"));
  EXPECT_EQ(r.sampling.temperature, 0.0f);
  r = accept(cmpl, completion(R"("temperature":2,"top_k":-1,"n":16,"max_tokens":2147483647,"min_p":0)"));
  EXPECT_EQ(r.sampling.top_k, 0);  // vLLM's "off" spelled as 0
  EXPECT_EQ(r.n, 16);
  EXPECT_EQ(r.max_tokens, 2147483647);
  r = accept(cmpl, completion(R"("top_k":0,"logprobs":0,"seed":9223372036854775807,"temperature":1e-3)"));
  EXPECT_EQ(r.sampling.logprobs, 0);
  EXPECT_EQ(*r.sampling.seed, uint64_t{9223372036854775807});
  r = accept(cmpl, completion(R"("seed":-9223372036854775808,"logprobs":20,"stop":"x")"));
  EXPECT_EQ(*r.sampling.seed, uint64_t{1} << 63);
  EXPECT_EQ(r.sampling.logprobs, 20);
  EXPECT_EQ(r.stop, std::vector<std::string>{"x"});
  r = accept(cmpl, completion(R"("stop":[],"stop_token_ids":[])"));
  EXPECT_TRUE(r.stop.empty());
}

struct field_case {
  api_endpoint endpoint;
  std::string extra;    // fields added to a valid body
  std::string param;    // expected api_error.param
  std::string message;  // expected api_error.message
};

void expect_rejections(std::span<const field_case> cases) {
  for (const auto& c : cases) {
    const std::string body = c.endpoint == cmpl ? completion(c.extra) : chat_body(c.extra);
    const auto e = refuse(c.endpoint, body);
    EXPECT_EQ(e.status, 400) << body;
    EXPECT_EQ(e.param, c.param) << body;
    EXPECT_EQ(e.message, c.message) << body;
  }
}

TEST(openai_request, sampling_rejections) {
  const field_case cases[] = {
      {cmpl, R"("temperature":3.5)", "temperature", "'temperature' must be between 0 and 2, got 3.5"},
      {cmpl, R"("temperature":-0.1)", "temperature", "'temperature' must be between 0 and 2, got -0.1"},
      {chat, R"("temperature":"hot")", "temperature", "'temperature' must be a number, got string"},
      {cmpl, R"("temperature":1e300)", "temperature", "'temperature' must be between 0 and 2, got 1e+300"},
      {cmpl, R"("top_p":0)", "top_p", "'top_p' must be greater than 0 and at most 1, got 0"},
      {cmpl, R"("top_p":1.01)", "top_p", "'top_p' must be greater than 0 and at most 1, got 1.01"},
      {cmpl, R"("top_p":1e-300)", "top_p", "'top_p' must be greater than 0 and at most 1, got 1e-300"},
      {cmpl, R"("top_p":[1])", "top_p", "'top_p' must be a number, got array"},
      {cmpl, R"("top_k":-2)", "top_k", "'top_k' must be -1 or 0 (off) or a positive integer up to 2147483647, got -2"},
      {cmpl, R"("top_k":2.5)", "top_k", "'top_k' must be an integer, got 2.5"},
      {cmpl, R"("top_k":4294967296)", "top_k",
       "'top_k' must be -1 or 0 (off) or a positive integer up to 2147483647, got 4294967296"},
      {cmpl, R"("top_k":18446744073709551615)", "top_k",
       "'top_k' must be -1 or 0 (off) or a positive integer up to 2147483647, got 18446744073709551615"},
      {cmpl, R"("min_p":1.5)", "min_p", "'min_p' must be between 0 and 1, got 1.5"},
      {cmpl, R"("min_p":-1)", "min_p", "'min_p' must be between 0 and 1, got -1"},
      {cmpl, R"("presence_penalty":2.5)", "presence_penalty", "'presence_penalty' must be between -2 and 2, got 2.5"},
      {chat, R"("frequency_penalty":-3)", "frequency_penalty", "'frequency_penalty' must be between -2 and 2, got -3"},
      {cmpl, R"("repetition_penalty":0)", "repetition_penalty",
       "'repetition_penalty' must be greater than 0 (and at most 3.4e38), got 0"},
      {cmpl, R"("repetition_penalty":-1)", "repetition_penalty",
       "'repetition_penalty' must be greater than 0 (and at most 3.4e38), got -1"},
      {cmpl, R"("repetition_penalty":1e39)", "repetition_penalty",
       "'repetition_penalty' must be greater than 0 (and at most 3.4e38), got 1e+39"},
      {cmpl, R"("repetition_penalty":true)", "repetition_penalty", "'repetition_penalty' must be a number, got boolean"},
      {cmpl, R"("seed":1.5)", "seed", "'seed' must be an integer, got 1.5"},
      {cmpl, R"("seed":"42")", "seed", "'seed' must be an integer, got string"},
      {cmpl, R"("seed":9223372036854775808)", "seed",
       "'seed' must be between -9223372036854775808 and 9223372036854775807, got 9223372036854775808"},
  };
  expect_rejections(cases);
}

TEST(openai_request, length_count_and_stop_rejections) {
  const field_case cases[] = {
      {cmpl, R"("max_tokens":0)", "max_tokens", "'max_tokens' must be between 1 and 2147483647, got 0"},
      {cmpl, R"("max_tokens":3.5)", "max_tokens", "'max_tokens' must be an integer, got 3.5"},
      {cmpl, R"("max_tokens":3.0)", "max_tokens", "'max_tokens' must be an integer, got 3.0"},
      {cmpl, R"("max_tokens":1e2)", "max_tokens", "'max_tokens' must be an integer, got 100.0"},
      {cmpl, R"("max_tokens":2147483648)", "max_tokens",
       "'max_tokens' must be between 1 and 2147483647, got 2147483648"},
      {cmpl, R"("max_tokens":"16")", "max_tokens", "'max_tokens' must be an integer, got string"},
      {chat, R"("max_completion_tokens":-5)", "max_completion_tokens",
       "'max_completion_tokens' must be between 1 and 2147483647, got -5"},
      {cmpl, R"("n":0)", "n", "'n' must be between 1 and 16, got 0"},
      {chat, R"("n":17)", "n", "'n' must be between 1 and 16, got 17"},
      {cmpl, R"("stop":"")", "stop", "'stop' must not be an empty string"},
      {cmpl, R"("stop":["a",""])", "stop[1]", "'stop[1]' must not be empty"},
      {cmpl, R"("stop":["a",3])", "stop[1]", "'stop[1]' must be a string, got number"},
      {cmpl, R"("stop":5)", "stop", "'stop' must be a string or an array of strings, got number"},
      {cmpl, R"("stop":["1","2","3","4","5","6","7","8","9","10","11","12","13","14","15","16","17"])", "stop",
       "'stop' may hold at most 16 strings, got 17"},
      {cmpl, R"("stop_token_ids":[1,-1])", "stop_token_ids[1]",
       "'stop_token_ids[1]' must be between 0 and 2147483647, got -1"},
      {chat, R"("stop_token_ids":3)", "stop_token_ids", "'stop_token_ids' must be an array, got number"},
  };
  expect_rejections(cases);
}

TEST(openai_request, boolean_string_and_stream_rejections) {
  const field_case cases[] = {
      {cmpl, R"("stream":"yes")", "stream", "'stream' must be a boolean, got string"},
      {cmpl, R"("ignore_eos":1)", "ignore_eos", "'ignore_eos' must be a boolean, got number"},
      {cmpl, R"("skip_special_tokens":[])", "skip_special_tokens", "'skip_special_tokens' must be a boolean, got array"},
      {chat, R"("add_generation_prompt":"no")", "add_generation_prompt",
       "'add_generation_prompt' must be a boolean, got string"},
      {cmpl, R"("cache":0)", "cache", "'cache' must be a boolean, got number"},
      {cmpl, R"("user":5)", "user", "'user' must be a string, got number"},
      {cmpl, R"("stream_options":{"include_usage":true})", "stream_options",
       "stream_options is only allowed when stream is true"},
      {chat, R"("stream":false,"stream_options":{})", "stream_options",
       "stream_options is only allowed when stream is true"},
      {chat, R"("stream":true,"stream_options":true)", "stream_options", "'stream_options' must be an object, got boolean"},
      {chat, R"("stream":true,"stream_options":{"include_usage":"yes"})", "stream_options.include_usage",
       "'stream_options.include_usage' must be a boolean, got string"},
  };
  expect_rejections(cases);
}

TEST(openai_request, logprobs_per_endpoint) {
  EXPECT_EQ(accept(cmpl, completion(R"("logprobs":3)")).sampling.logprobs, 3);
  EXPECT_EQ(accept(cmpl, completion(R"("logprobs":null)")).sampling.logprobs, -1);
  EXPECT_EQ(accept(chat, chat_body(R"("logprobs":true)")).sampling.logprobs, 0);
  EXPECT_EQ(accept(chat, chat_body(R"("logprobs":true,"top_logprobs":4)")).sampling.logprobs, 4);
  EXPECT_EQ(accept(chat, chat_body(R"("logprobs":false)")).sampling.logprobs, -1);
  EXPECT_EQ(accept(chat, chat_body(R"("logprobs":false,"top_logprobs":null)")).sampling.logprobs, -1);
  const field_case cases[] = {
      {cmpl, R"("logprobs":21)", "logprobs", "'logprobs' must be between 0 and 20, got 21"},
      {cmpl, R"("logprobs":-1)", "logprobs", "'logprobs' must be between 0 and 20, got -1"},
      {cmpl, R"("logprobs":true)", "logprobs", "'logprobs' must be an integer, got boolean"},
      {chat, R"("logprobs":5)", "logprobs", "'logprobs' must be a boolean, got number"},
      {chat, R"("logprobs":true,"top_logprobs":21)", "top_logprobs", "'top_logprobs' must be between 0 and 20, got 21"},
      {chat, R"("top_logprobs":2)", "top_logprobs", "'top_logprobs' requires 'logprobs' to be true"},
      {chat, R"("logprobs":false,"top_logprobs":2)", "top_logprobs", "'top_logprobs' requires 'logprobs' to be true"},
  };
  expect_rejections(cases);
}

TEST(openai_request, chat_messages) {
  const auto r = accept(chat, R"({"model":"m","messages":[
      {"role":"developer","content":"Be brief."},
      {"role":"system","content":"Sys"},
      {"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":"part two"}]},
      {"role":"assistant","content":null,"tool_calls":[]},
      {"role":"assistant"},
      {"role":"tool","content":"42","tool_call_id":"c1"},
      {"role":"user","content":[]}],
      "max_tokens":5,"max_completion_tokens":9,"add_generation_prompt":false,"prompt":"ignored"})");
  ASSERT_EQ(r.messages.size(), 7u);
  EXPECT_EQ(r.endpoint, chat);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[0].content, "Be brief.");
  EXPECT_EQ(r.messages[1].role, "system");
  EXPECT_EQ(r.messages[2].role, "user");
  EXPECT_EQ(r.messages[2].content, "part one\npart two");
  EXPECT_EQ(r.messages[3].role, "assistant");
  EXPECT_EQ(r.messages[3].content, "");
  EXPECT_EQ(r.messages[4].content, "");
  EXPECT_EQ(r.messages[5].role, "tool");
  EXPECT_EQ(r.messages[5].content, "42");
  EXPECT_EQ(r.messages[6].content, "");
  EXPECT_EQ(r.max_tokens, 9);  // max_completion_tokens wins
  EXPECT_FALSE(r.add_generation_prompt);
  EXPECT_FALSE(r.prompt_text);
  EXPECT_FALSE(r.prompt_tokens);

  const auto d = accept(chat, chat_body(R"("max_tokens":7)"));
  EXPECT_EQ(d.max_tokens, 7);
  EXPECT_TRUE(d.add_generation_prompt);
  // Completions read no max_completion_tokens (a chat-only field).
  EXPECT_FALSE(accept(cmpl, completion(R"("max_completion_tokens":7)")).max_tokens);
}

TEST(openai_request, chat_message_rejections) {
  struct bad_case {
    std::string messages, param, message;
  };
  const bad_case cases[] = {
      {"[]", "messages", "'messages' must not be empty"},
      {"{}", "messages", "'messages' must be an array, got object"},
      {R"(["hi"])", "messages[0]", "'messages[0]' must be an object, got string"},
      {R"([{"content":"x"}])", "messages[0].role", "'messages[0].role' is required"},
      {R"([{"role":"user","content":"a"},{"role":"user","content":"b"},{"role":"robot","content":"c"}])",
       "messages[2].role", "'messages[2].role' must be one of system, developer, user, assistant, tool; got \"robot\""},
      {R"([{"role":1,"content":"x"}])", "messages[0].role", "'messages[0].role' must be a string, got number"},
      {R"([{"role":"user"}])", "messages[0].content",
       "'messages[0].content' must be a string or an array of text parts, got null"},
      {R"([{"role":"user","content":null}])", "messages[0].content",
       "'messages[0].content' must be a string or an array of text parts, got null"},
      {R"([{"role":"system","content":5}])", "messages[0].content",
       "'messages[0].content' must be a string or an array of text parts, got number"},
      {R"([{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"x"}}]}])",
       "messages[0].content[1].type",
       "'messages[0].content[1].type' must be \"text\", got \"image_url\" (only text content is supported)"},
      {R"([{"role":"user","content":[{"text":"a"}]}])", "messages[0].content[0].type",
       "'messages[0].content[0].type' is required"},
      {R"([{"role":"user","content":[{"type":"text"}]}])", "messages[0].content[0].text",
       "'messages[0].content[0].text' is required"},
      {R"([{"role":"user","content":[{"type":"text","text":7}]}])", "messages[0].content[0].text",
       "'messages[0].content[0].text' must be a string, got number"},
      {R"([{"role":"user","content":["a"]}])", "messages[0].content[0]",
       "'messages[0].content[0]' must be an object, got string"},
  };
  for (const auto& c : cases) {
    const std::string body = R"({"model":"m","messages":)" + c.messages + "}";
    const auto e = refuse(chat, body);
    EXPECT_EQ(e.param, c.param) << body;
    EXPECT_EQ(e.message, c.message) << body;
  }
  EXPECT_EQ(refuse(chat, R"({"model":"m"})").message, "'messages' is required");
  EXPECT_EQ(refuse(chat, R"({"model":"m","prompt":"a"})").param, "messages");
}

TEST(openai_request, long_strings_are_cut_in_messages) {
  const std::string role(200, 'r');
  const auto e = refuse(chat, R"({"model":"m","messages":[{"role":")" + role + R"(","content":""}]})");
  EXPECT_LT(e.message.size(), 160u);
  EXPECT_NE(e.message.find("...\""), std::string::npos);
  // A cut inside a multi-byte character backs up to its start.
  std::string accents;
  for (int i = 0; i < 30; ++i) accents += "\xc3\xa9";
  const auto f = refuse(chat, R"({"model":"m","messages":[{"role":")" + accents + R"(","content":""}]})");
  EXPECT_NE(f.message.find(accents.substr(0, 40) + "...\""), std::string::npos) << f.message;
}

TEST(openai_request, error_json_shape) {
  api_error e;
  e.message = "'temperature' must be between 0 and 2, got 3.5";
  e.param = "temperature";
  const std::string json = error_json(e);
  EXPECT_EQ(json,
            R"({"error":{"message":"'temperature' must be between 0 and 2, got 3.5","type":"invalid_request_error",)"
            R"("param":"temperature","code":null}})");
  api_error nulls;
  nulls.message = "quote \" and \xff byte";
  nulls.code = "model_not_found";
  nulls.status = 404;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  const std::string out = error_json(nulls);
  ASSERT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;
  EXPECT_EQ(std::string_view(doc["error"]["message"].get_string().value()), "quote \" and \xef\xbf\xbd byte");
  EXPECT_TRUE(doc["error"]["param"].is_null());
  EXPECT_EQ(std::string_view(doc["error"]["code"].get_string().value()), "model_not_found");
}

TEST(openai_request, error_json_of_every_rejection_parses) {
  const std::string bodies[] = {"{", "[]", R"({"model":"m","prompt":[1,"x"]})", completion(R"("top_p":2)")};
  simdjson::dom::parser parser;
  for (const auto& body : bodies) {
    const std::string out = error_json(refuse(cmpl, body));
    simdjson::dom::element doc;
    EXPECT_EQ(parser.parse(out).get(doc), simdjson::SUCCESS) << out;
  }
}

}  // namespace
}  // namespace troupe::frontend::http
