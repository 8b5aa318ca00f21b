// The chat templates real checkpoints ship (tests/engine/chat/templates, sources in README.md),
// rendered over conversations that exercise every path they have: system prompts or none, several
// turns, with and without the generation prompt, awkward content (Unicode, quotes, newlines,
// braces, surrounding whitespace), tool definitions, tool calls and tool results, and the errors
// the templates raise themselves. Every render must equal @huggingface/jinja's byte for byte.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <thread>
#include <string>
#include <vector>

#include "tests/engine/chat/oracle_harness.hpp"

namespace troupe::engine::chat::test {
namespace {

std::string read_template(const std::string& file) {
  std::ifstream in(std::string(TROUPE_SOURCE_DIR) + "/tests/engine/chat/templates/" + file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// --- conversations (the "messages" of the context) ----------------------------------------------

const char* const with_system = R"([
  {"role": "system", "content": "You are a helpful assistant."},
  {"role": "user", "content": "Hello! How are you?"},
  {"role": "assistant", "content": "I'm fine, thank you. How can I help?"},
  {"role": "user", "content": "Tell me a joke."}])";

const char* const without_system = R"([
  {"role": "user", "content": "What is 2 + 2?"},
  {"role": "assistant", "content": "4"},
  {"role": "user", "content": "And 3 + 3?"},
  {"role": "assistant", "content": "6"},
  {"role": "user", "content": "Thanks."}])";

const char* const single_user = R"([{"role": "user", "content": "Hi"}])";

// Content a template must pass through untouched (or trim, where it trims).
const char* const awkward = R"([
  {"role": "system", "content": "  Réponds en français, s'il te plaît.\n\n"},
  {"role": "user", "content": "\tQuotes: ' \" `, braces: {{ x }} {% if %} {# c #}, backslash: \\ \\n\nunicode: 日本語 🙂 ümlaut\u2028end  "},
  {"role": "assistant", "content": "  Sure: {\"json\": [1, 2]} </s> <|eot_id|>  "},
  {"role": "user", "content": "\n\nLast line with trailing newline\n"}])";

const char* const weather_tools = R"([
  {"type": "function", "function": {
    "name": "get_weather",
    "description": "Get the current weather in a city",
    "parameters": {
      "type": "object",
      "properties": {
        "city": {"type": "string", "description": "The city, e.g. \"Paris\""},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
        "days": {"type": "integer", "minimum": 1, "maximum": 7.5}
      },
      "required": ["city"]
    },
    "return": {"type": "string"}
  }},
  {"type": "function", "function": {
    "name": "get_time",
    "description": "Current time (UTC) — naïve",
    "parameters": {"type": "object", "properties": {}}
  }}])";

// One tool call whose arguments are an object (transformers' format).
const char* const one_tool_call = R"([
  {"role": "system", "content": "Use tools when useful."},
  {"role": "user", "content": "What's the weather in Paris?"},
  {"role": "assistant", "content": null, "tool_calls": [
    {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius", "days": 2}}}]},
  {"role": "tool", "tool_call_id": "call00001", "name": "get_weather", "content": "{\"temperature\": 21.5, \"sky\": \"clear\"}"},
  {"role": "assistant", "content": "It is 21.5 °C and clear in Paris."},
  {"role": "user", "content": "Thanks!"}])";

// Arguments as a JSON string (the OpenAI wire format) and a tool result that is an object.
const char* const string_arguments = R"([
  {"role": "user", "content": "Time please"},
  {"role": "assistant", "content": "", "tool_calls": [
    {"id": "abcDEF123", "type": "function", "function": {"name": "get_time", "arguments": "{\"zone\": \"UTC\"}"}}]},
  {"role": "tool", "tool_call_id": "abcDEF123", "content": "12:00"}])";

// Two calls in one turn, two results in a row (Qwen, Mistral).
const char* const parallel_calls = R"([
  {"role": "user", "content": "Weather in Paris and Rome?"},
  {"role": "assistant", "content": "Let me check both.", "tool_calls": [
    {"id": "call00001", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
    {"id": "call00002", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Rome", "unit": "celsius"}}}]},
  {"role": "tool", "tool_call_id": "call00001", "content": "sunny"},
  {"role": "tool", "tool_call_id": "call00002", "content": "rainy"},
  {"role": "assistant", "content": "Paris is sunny, Rome is rainy."},
  {"role": "user", "content": "And tomorrow?"}])";

// --- contexts ------------------------------------------------------------------------------------

struct model {
  std::string name;
  std::string file;
  std::string bos;
  std::string eos;
};

std::string context(const model& m, const std::string& messages, bool generation, const std::string& extra = "") {
  return "{\"messages\": " + messages + ", \"bos_token\": " + json_string(m.bos) + ", \"eos_token\": " +
         json_string(m.eos) + ", \"add_generation_prompt\": " + (generation ? "true" : "false") +
         (extra.find("\"tools\"") == std::string::npos ? ", \"tools\": null" : "") +
         (extra.empty() ? "" : ", " + extra) + "}";
}

// Each conversation with and without the generation prompt.
void add_both(std::vector<template_case>& cases, const model& m, const std::string& tmpl, const std::string& name,
              const std::string& messages, const std::string& extra = "") {
  for (const bool generation : {true, false}) {
    cases.push_back({m.name + " " + name + (generation ? " +gen" : ""), tmpl, context(m, messages, generation, extra)});
  }
}

void add_error(std::vector<template_case>& cases, const model& m, const std::string& tmpl, const std::string& name,
               const std::string& messages, const std::string& message, const std::string& extra = "") {
  cases.push_back({m.name + " " + name, tmpl, context(m, messages, true, extra), message});
}

void expect_matches(const std::string& batch, const std::vector<template_case>& cases) {
  ASSERT_FALSE(cases.front().source.empty()) << "template file missing";
  const auto failures = compare_with_oracle(batch, cases);
  EXPECT_TRUE(failures.empty()) << failures.size() << " of " << cases.size() << " cases differ:\n"
                                << join_reports(failures);
}

const std::string tools_extra = std::string("\"tools\": ") + weather_tools;

TEST(chat_real_templates, llama_3_1) {
  // The Llama 3.1 Instruct template; Llama 3.3 ships the same text (see templates/README.md).
  const model m{"llama3.1", "meta-llama-Llama-3.3-70B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"};
  const std::string t = read_template(m.file);
  std::vector<template_case> cases;
  add_both(cases, m, t, "system", with_system);
  add_both(cases, m, t, "no system", without_system);
  add_both(cases, m, t, "single user", single_user);
  add_both(cases, m, t, "awkward content", awkward);
  add_both(cases, m, t, "date string", with_system, "\"date_string\": \"03 Mar 2025\"");
  add_both(cases, m, t, "tools in user message", one_tool_call, tools_extra);
  add_both(cases, m, t, "tools in system message", one_tool_call, tools_extra + ", \"tools_in_user_message\": false");
  add_both(cases, m, t, "string arguments", string_arguments, tools_extra);
  add_both(cases, m, t, "custom_tools", without_system, std::string("\"custom_tools\": ") + weather_tools);
  // (builtin_tools takes the reject filter, which @huggingface/jinja lacks: see language_test.)
  add_both(cases, m, t, "ipython result",
           R"([{"role": "user", "content": "Search"}, {"role": "ipython", "content": {"results": ["a", "b"]}}])");
  add_error(cases, m, t, "tools without a user message", R"([{"role": "system", "content": "s"}])",
            "Cannot put tools in the first user message when there's no first user message!", tools_extra);
  add_error(cases, m, t, "two tool calls", parallel_calls, "This model only supports single tool-calls at once!");
  expect_matches("llama31", cases);
}

TEST(chat_real_templates, llama_3_2) {
  const model m{"llama3.2", "meta-llama-Llama-3.2-3B-Instruct.jinja", "<|begin_of_text|>", "<|eot_id|>"};
  const std::string t = read_template(m.file);
  std::vector<template_case> cases;
  // A fixed date_string: the template otherwise calls strftime_now (tested in language_test).
  const std::string date = "\"date_string\": \"26 Jul 2024\"";
  add_both(cases, m, t, "system", with_system, date);
  add_both(cases, m, t, "no system", without_system, date);
  add_both(cases, m, t, "awkward content", awkward, date);
  add_both(cases, m, t, "tools", one_tool_call, tools_extra + ", " + date);
  add_both(cases, m, t, "string arguments", string_arguments, tools_extra + ", " + date);
  add_error(cases, m, t, "two tool calls", parallel_calls, "This model only supports single tool-calls at once!", date);
  expect_matches("llama32", cases);
}

TEST(chat_real_templates, qwen_2_5) {
  const model m{"qwen2.5", "Qwen-Qwen2.5-7B-Instruct.jinja", "", "<|im_end|>"};
  const std::string t = read_template(m.file);
  std::vector<template_case> cases;
  add_both(cases, m, t, "system", with_system);
  add_both(cases, m, t, "default system", without_system);
  add_both(cases, m, t, "single user", single_user);
  add_both(cases, m, t, "awkward content", awkward);
  add_both(cases, m, t, "tools with system", one_tool_call, tools_extra);
  add_both(cases, m, t, "tools without system", parallel_calls, tools_extra);
  add_both(cases, m, t, "string arguments", string_arguments, tools_extra);
  add_both(cases, m, t, "calls without tools", parallel_calls);
  add_both(cases, m, t, "system mid-conversation",
           R"([{"role": "user", "content": "a"}, {"role": "system", "content": "be brief"}, {"role": "user", "content": "b"}])");
  expect_matches("qwen25", cases);
}

void add_mistral_cases(std::vector<template_case>& cases, const model& m, const std::string& t) {
  add_both(cases, m, t, "system", with_system);
  add_both(cases, m, t, "no system", without_system);
  add_both(cases, m, t, "single user", single_user);
  add_both(cases, m, t, "awkward content", awkward);
  add_both(cases, m, t, "tools", one_tool_call, tools_extra);
  add_both(cases, m, t, "parallel calls", parallel_calls, tools_extra);
  add_both(cases, m, t, "string arguments", string_arguments, tools_extra);
  add_both(cases, m, t, "nested tool content",
           R"([{"role": "user", "content": "x"},
               {"role": "assistant", "tool_calls": [{"id": "A1b2C3d4E", "function": {"name": "f", "arguments": "{}"}}]},
               {"role": "tool", "tool_call_id": "A1b2C3d4E", "content": {"content": "inner result"}}])");
  add_error(cases, m, t, "roles not alternating",
            R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])",
            "After the optional system message, conversation roles must alternate user/assistant/user/assistant/...");
  add_error(cases, m, t, "assistant first", R"([{"role": "assistant", "content": "a"}])",
            "conversation roles must alternate");
  add_error(cases, m, t, "short tool call id",
            R"([{"role": "user", "content": "x"},
                {"role": "assistant", "tool_calls": [{"id": "short", "function": {"name": "f", "arguments": {}}}]}])",
            "Tool call IDs should be alphanumeric strings with length 9!");
  add_error(cases, m, t, "unknown role",
            R"([{"role": "user", "content": "x"}, {"role": "critic", "content": "y"}])",
            "Only user and assistant roles are supported, with the exception of an initial optional system message!");
}

TEST(chat_real_templates, mistral_7b_v0_3) {
  const model m{"mistral-v0.3", "mistralai-Mistral-7B-Instruct-v0.3.jinja", "<s>", "</s>"};
  std::vector<template_case> cases;
  add_mistral_cases(cases, m, read_template(m.file));
  expect_matches("mistral03", cases);
}

TEST(chat_real_templates, mistral_nemo) {
  const model m{"mistral-nemo", "mistralai-Mistral-Nemo-Instruct-2407.jinja", "<s>", "</s>"};
  std::vector<template_case> cases;
  add_mistral_cases(cases, m, read_template(m.file));
  expect_matches("mistralnemo", cases);
}

TEST(chat_real_templates, gemma_2) {
  const model m{"gemma2", "google-gemma-2-2b-it.jinja", "<bos>", "<eos>"};
  const std::string t = read_template(m.file);
  std::vector<template_case> cases;
  add_both(cases, m, t, "conversation", without_system);
  add_both(cases, m, t, "single user", single_user);
  add_both(cases, m, t, "awkward content",
           R"([{"role": "user", "content": "  ¿Qué tal? {{ x }} \"quoted\" \n"}, {"role": "assistant", "content": "\n\tBien 🙂 "}])");
  add_error(cases, m, t, "system role", with_system, "System role not supported");
  add_error(cases, m, t, "roles not alternating",
            R"([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}])",
            "Conversation roles must alternate user/assistant/user/assistant/...");
  expect_matches("gemma2", cases);
}

// Statement tags on lines of their own: trim_blocks and lstrip_blocks decide every newline.
TEST(chat_real_templates, deepseek_r1_distill) {
  const model m{"deepseek-r1", "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja", "<｜begin▁of▁sentence｜>",
                "<｜end▁of▁sentence｜>"};
  const std::string t = read_template(m.file);
  std::vector<template_case> cases;
  add_both(cases, m, t, "system", with_system);
  add_both(cases, m, t, "no system", without_system);
  add_both(cases, m, t, "awkward content", awkward);
  add_both(cases, m, t, "thinking stripped",
           R"([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "<think>\nadd\n</think>\n\n4"},
               {"role": "user", "content": "3+3?"}])");
  add_both(cases, m, t, "tool calls and outputs",
           R"([{"role": "user", "content": "weather?"},
               {"role": "assistant", "content": null, "tool_calls": [
                 {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                 {"type": "function", "function": {"name": "get_time", "arguments": "{}"}}]},
               {"role": "tool", "content": "sunny"}, {"role": "tool", "content": "noon"},
               {"role": "assistant", "content": "Sunny at noon."}])");
  add_both(cases, m, t, "ends in tool output",
           R"([{"role": "user", "content": "x"}, {"role": "tool", "content": "out"}])");
  expect_matches("deepseekr1", cases);
}

// The same template object renders concurrently (the router's use) with identical results.
TEST(chat_real_templates, renders_concurrently) {
  auto tmpl = chat_template::parse(read_template("Qwen-Qwen2.5-7B-Instruct.jinja"));
  ASSERT_TRUE(tmpl) << tmpl.message();
  const model m{"qwen2.5", "", "", "<|im_end|>"};
  auto ctx = from_json(context(m, parallel_calls, true, tools_extra));
  ASSERT_TRUE(ctx) << ctx.message();
  auto expected_text = tmpl->render(*ctx);
  ASSERT_TRUE(expected_text) << expected_text.message();
  std::vector<std::string> results(8);
  std::vector<std::thread> threads;
  for (size_t i = 0; i < results.size(); ++i) {
    threads.emplace_back([&tmpl, &ctx, &results, i] {
      for (int k = 0; k < 50; ++k) {
        auto r = tmpl->render(*ctx);
        results[i] = r ? *r : "error: " + r.message();
      }
    });
  }
  for (std::thread& t : threads) t.join();
  for (const std::string& r : results) EXPECT_EQ(r, *expected_text);
}

}  // namespace
}  // namespace troupe::engine::chat::test
