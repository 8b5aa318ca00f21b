// libFuzzer target for the chat-template interpreter: any source must parse or fail with a located
// error; a parsed template must render against a small fixed conversation or fail the same way,
// within the (reduced) limits: no crash, no hang, no unbounded memory, no unlocated error.
#include <cstdint>
#include <string_view>

#include "engine/chat/chat_template.hpp"

using namespace troupe::engine::chat;

namespace {

constexpr std::string_view prefix = "chat template: ";

const value& context() {
  static const value ctx = [] {
    auto messages = from_json(R"([
      {"role": "system", "content": "  Be brief.\n"},
      {"role": "user", "content": "Hi {{ there }} é🙂"},
      {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call12345", "type": "function", "function": {"name": "f", "arguments": {"x": 1.5, "y": [true, null]}}}]},
      {"role": "tool", "tool_call_id": "call12345", "content": "ok"},
      {"role": "user", "content": "Thanks"}])");
    auto extra = from_json(R"({"tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                               "date_string": "26 Jul 2024"})");
    render_options options;
    options.bos_token = "<s>";
    options.eos_token = "</s>";
    options.extra = *extra;
    return chat_context(*messages, options);
  }();
  return ctx;
}

// Smaller than the defaults so that every input runs in milliseconds.
render_limits limits() {
  render_limits l;
  l.max_output_bytes = 1 << 20;
  l.max_loop_iterations = 100'000;
  l.max_work = 2'000'000;
  return l;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view source(reinterpret_cast<const char*>(data), size);
  auto tmpl = chat_template::parse(source);
  if (!tmpl) {
    if (tmpl.message().rfind(prefix, 0) != 0) __builtin_trap();  // an error that does not say where
    return 0;
  }
  auto text = tmpl->render(context(), limits());
  if (!text && text.message().rfind(prefix, 0) != 0) __builtin_trap();
  if (text && text->size() > limits().max_output_bytes) __builtin_trap();
  return 0;
}
