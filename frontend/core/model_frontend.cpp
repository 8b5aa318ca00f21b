// Request preparation against the served model (see model_frontend.hpp).
#include "frontend/core/model_frontend.hpp"

#include <sys/stat.h>

#include <filesystem>

#include "engine/model_tokenizer.hpp"

namespace troupe::frontend {

std::string model_name_for(const std::string& path) {
  std::filesystem::path p(path);
  if (p.filename().empty()) p = p.parent_path();  // a trailing slash
  std::string name = p.filename().string();
  if (name.size() > 5 && name.ends_with(".gguf")) name.resize(name.size() - 5);
  return name;
}

std::string model_revision_for(const std::string& path) {
  std::error_code ec;
  const auto canonical = std::filesystem::weakly_canonical(path, ec);
  std::string rev = ec ? path : canonical.string();
  // A folder: its weights file decides; else the file itself.
  std::string probe = rev;
  if (std::filesystem::is_directory(rev, ec)) probe = rev + "/config.json";
  struct stat st {};
  if (::stat(probe.c_str(), &st) == 0) {
    rev += '@';
    rev += std::to_string(st.st_size);
    rev += ':';
    rev += std::to_string(int64_t(st.st_mtim.tv_sec));
  }
  return rev;
}

expected<std::unique_ptr<model_frontend>> model_frontend::load(const std::string& path) {
  auto m = engine::load_model(path);
  if (!m) return m.err();
  auto tok = engine::load_tokenizer_for(**m);
  if (!tok) return tok.err();
  auto fe = std::unique_ptr<model_frontend>(new model_frontend());
  fe->model_ = std::move(*m);
  fe->tokenizer_ = std::move(*tok);
  const std::string& source = fe->tokenizer_->chat_template();
  if (!source.empty()) {
    auto t = engine::chat::chat_template::parse(source);
    if (!t) return fail(path + ": chat template: " + t.message());
    fe->template_ = std::make_unique<engine::chat::chat_template>(std::move(*t));
  }
  fe->name_ = model_name_for(path);
  fe->revision_ = model_revision_for(path);
  return fe;
}

namespace {

failure bad(std::string message, std::string param, failure_code code = failure_code::invalid_request) {
  return failure{code, std::move(message), std::move(param)};
}

}  // namespace

std::variant<request, failure> model_frontend::prepare(const api_request& r) const {
  if (r.model != name_)
    return bad("The model '" + r.model + "' does not exist; this server serves '" + name_ + "'", "model",
               failure_code::not_found);
  const int64_t vocab = model_->config.vocab_size;
  request g;
  std::string_view prompt_name = "prompt";
  if (r.endpoint == api_endpoint::chat_completions) {
    prompt_name = "messages";
    if (!template_)
      return bad("the model '" + name_ + "' has no chat template; use /v1/completions", "messages");
    engine::chat::render_options options;
    const auto& sp = tokenizer_->specials();
    if (sp.bos) options.bos_token = tokenizer_->token_bytes(*sp.bos);
    if (sp.eos) options.eos_token = tokenizer_->token_bytes(*sp.eos);
    options.add_generation_prompt = r.add_generation_prompt;
    auto text = engine::chat::render_chat(*template_, r.messages, options);
    if (!text) return bad("the chat template failed on these messages: " + text.message(), "messages");
    // The template writes bos itself (as apply_chat_template, which tokenizes without specials).
    g.prompt = tokenizer_->encode(*text, false);
  } else if (r.prompt_tokens) {
    g.prompt = *r.prompt_tokens;
    for (size_t i = 0; i < g.prompt.size(); ++i)
      if (g.prompt[i] >= vocab)
        return bad("prompt token id " + std::to_string(g.prompt[i]) + " at index " + std::to_string(i) +
                       " is outside the vocabulary [0, " + std::to_string(vocab) + ")",
                   "prompt");
  } else if (r.prompt_text) {
    g.prompt = tokenizer_->encode(*r.prompt_text);
  }
  if (g.prompt.empty()) return bad("the prompt encodes to no tokens", std::string(prompt_name));
  for (int32_t t : r.stop_token_ids)
    if (t >= vocab)
      return bad("stop token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(vocab) + ")",
                 "stop_token_ids");

  // prompt + max_tokens must fit the context (the last token needs no position of its own: the
  // engine's own rule, so that what passes here is never refused by a shard group).
  const int64_t context = max_context();
  const int64_t prompt_len = int64_t(g.prompt.size());
  if (prompt_len >= context)
    return bad("This model's maximum context length is " + std::to_string(context) + " tokens. However, your " +
                   std::string(prompt_name) + " resulted in " + std::to_string(prompt_len) +
                   " tokens; at least one token must be left to generate.",
               std::string(prompt_name), failure_code::context_length);
  if (r.max_tokens && prompt_len + *r.max_tokens > context)
    return bad("This model's maximum context length is " + std::to_string(context) + " tokens. However, you requested " +
                   std::to_string(prompt_len + *r.max_tokens) + " tokens (" + std::to_string(prompt_len) + " in the " +
                   std::string(prompt_name) + ", " + std::to_string(*r.max_tokens) +
                   " in the completion). Please reduce the length of the " + std::string(prompt_name) +
                   " or the completion.",
               "max_tokens", failure_code::context_length);
  g.max_tokens = int32_t(r.max_tokens ? *r.max_tokens : context - prompt_len);

  g.sampling = r.sampling;
  g.stop.token_ids = r.stop_token_ids;
  g.stop.ignore_eos = r.ignore_eos;
  g.stop.strings = r.stop;
  g.skip_special_tokens = r.skip_special_tokens;
  g.n = r.n;
  return g;
}

}  // namespace troupe::frontend
