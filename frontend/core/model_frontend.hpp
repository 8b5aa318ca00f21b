// The served model as the router sees it: its name, revision, context and tokenizer, with the chat
// template parsed once. Turns a parsed OpenAI request into the token-level request a shard group
// runs, with every check that needs the model (unknown model, vocabulary, context length).
#pragma once

#include <memory>
#include <string>
#include <variant>

#include "common/failure.hpp"
#include "common/request.hpp"
#include "engine/chat/chat_template.hpp"
#include "engine/model/model.hpp"
#include "engine/tokenizer/tokenizer.hpp"
#include "frontend/core/api_request.hpp"

namespace troupe::frontend {

class model_frontend {
 public:
  // Loads the model's config and tokenizer (the weights are only mapped, never read).
  [[nodiscard]] static expected<std::unique_ptr<model_frontend>> load(const std::string& path);

  // The name clients use in "model": the folder or file name, without .gguf.
  [[nodiscard]] const std::string& name() const { return name_; }
  // Identifies the weights; shard groups must serve the same.
  [[nodiscard]] const std::string& revision() const { return revision_; }
  [[nodiscard]] int64_t max_context() const { return model_->config.max_position; }
  [[nodiscard]] const engine::tokenizer& tokenizer() const { return *tokenizer_; }

  // The request to route (its id not yet set). Failures: not_found for another model,
  // invalid_request for what the model cannot take (token ids outside the vocabulary, a failing
  // chat template), context_length for a prompt plus max_tokens beyond the context (the message
  // names the limit); each names the offending field in `param`.
  [[nodiscard]] std::variant<request, failure> prepare(const api_request& r) const;

 private:
  std::shared_ptr<const engine::model> model_;
  std::unique_ptr<engine::tokenizer> tokenizer_;
  std::unique_ptr<engine::chat::chat_template> template_;  // null when the model has none
  std::string name_, revision_;
};

// The name a model path is served under: "models/tiny-llama/" -> "tiny-llama", "x/m.gguf" -> "m".
[[nodiscard]] std::string model_name_for(const std::string& path);
// The revision of the weights at `path`: its canonical absolute path, size and modification time
// (so a model rewritten in place is a different revision). Same string on every node of one host.
[[nodiscard]] std::string model_revision_for(const std::string& path);

}  // namespace troupe::frontend
