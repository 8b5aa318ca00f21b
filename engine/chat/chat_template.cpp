// The chat-template API: parse once, render many times (see chat_template.hpp).
#include "engine/chat/chat_template.hpp"

#include "engine/chat/evaluator.hpp"
#include "engine/chat/parser.hpp"

namespace troupe::engine::chat {

expected<chat_template> chat_template::parse(std::string_view source) {
  auto program = parse_template(source);
  if (!program) return program.err();
  return chat_template(std::make_shared<const body>(std::move(*program)));
}

expected<std::string> chat_template::render(const value& context, const render_limits& limits) const {
  return evaluator(*program_, context, limits).run();
}

value chat_context(value messages, const render_options& options) {
  object_ptr context = make_object();
  context->set("messages", std::move(messages));
  context->set("tools", value::none());
  context->set("documents", value::none());
  context->set("add_generation_prompt", value::boolean(options.add_generation_prompt));
  context->set("bos_token", value::string(options.bos_token));
  context->set("eos_token", value::string(options.eos_token));
  if (options.extra.is_dict()) {
    for (const auto& [k, v] : options.extra.as_object().items()) context->set(k, v);
  }
  return value::dict(std::move(context));
}

expected<std::string> render_chat(const chat_template& tmpl, const std::vector<chat_message>& messages,
                                  const render_options& options) {
  std::vector<value> list;
  list.reserve(messages.size());
  for (const chat_message& m : messages) {
    object_ptr message = make_object();
    message->set("role", value::string(m.role));
    message->set("content", value::string(m.content));
    list.push_back(value::dict(std::move(message)));
  }
  return tmpl.render(chat_context(value::list(std::move(list)), options));
}

}  // namespace troupe::engine::chat
