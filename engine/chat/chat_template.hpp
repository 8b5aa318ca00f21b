// Chat templates: the Jinja programs that checkpoints ship (tokenizer_config.json "chat_template",
// GGUF tokenizer.chat_template) to turn a conversation into the model's prompt. Rendering matches
// Hugging Face transformers' apply_chat_template byte for byte for the Jinja subset real templates
// use (Llama 3.x, Qwen2/2.5, Mistral, Gemma, Phi-3, DeepSeek, ChatML...): see docs/DECISIONS.md,
// "Chat templates", for what is supported and how it matches Python Jinja.
//
// Thread-safety: a parsed template is immutable; render() is const and may run concurrently, also
// with contexts shared between threads.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "engine/chat/limits.hpp"
#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

struct stmt;

class chat_template {
 public:
  // Errors name the problem and its place: "chat template: line 3, column 12: unknown filter 'foo'".
  [[nodiscard]] static expected<chat_template> parse(std::string_view source);

  // Renders with `context` (a dict) as the template's variables. Errors: the template's own
  // raise_exception("...") message, undefined values read into, type errors, exceeded limits.
  [[nodiscard]] expected<std::string> render(const value& context, const render_limits& limits = {}) const;

 private:
  explicit chat_template(std::shared_ptr<const std::vector<stmt>> program) : program_(std::move(program)) {}
  std::shared_ptr<const std::vector<stmt>> program_;  // shared by copies of the template
};

struct chat_message {
  std::string role;  // system, user, assistant, tool
  std::string content;
};

struct render_options {
  std::string bos_token;
  std::string eos_token;
  bool add_generation_prompt = true;
  // Further variables, as apply_chat_template's keyword arguments: a dict such as
  // {"tools": [...], "date_string": "26 Jul 2024"}, or undefined for none.
  value extra;
};

// The variables transformers renders with: messages, tools and documents (None unless `extra` has
// them), add_generation_prompt, bos_token, eos_token, then everything in `extra`. `messages` is a
// list of message dicts (e.g. from_json of an OpenAI request's "messages").
[[nodiscard]] value chat_context(value messages, const render_options& options);

// Plain text conversations (the CLI): each message becomes {"role": ..., "content": ...}.
[[nodiscard]] expected<std::string> render_chat(const chat_template& tmpl, const std::vector<chat_message>& messages,
                                                const render_options& options);

}  // namespace troupe::engine::chat
