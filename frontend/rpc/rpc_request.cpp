// Cap'n Proto API requests as api_requests (see rpc_request.hpp).
#include "frontend/rpc/rpc_request.hpp"

#include <simdjson.h>

namespace troupe::frontend::rpc {
namespace {

// A Text field as a string, refused when it is not UTF-8 (the JSON parser refuses such bodies).
std::optional<failure> copy_text(capnp::Text::Reader text, const std::string& name, std::string& out) {
  if (!simdjson::validate_utf8(text.cStr(), text.size()))
    return failure{failure_code::invalid_request, "'" + name + "' must be valid UTF-8", name};
  out.assign(text.cStr(), text.size());
  return std::nullopt;
}

// capnp's list iterators lack the iterator traits std::vector's range constructor wants.
std::vector<int32_t> to_vector(capnp::List<int32_t>::Reader list) {
  std::vector<int32_t> out(list.size());
  for (uint32_t i = 0; i < list.size(); ++i) out[i] = list[i];
  return out;
}

std::optional<failure> copy_sampling(schema::Sampling::Reader s, api_request& r) {
  if (s.getMaxTokens() != 0) r.max_tokens = s.getMaxTokens();
  auto& p = r.sampling;
  p.temperature = s.getTemperature();
  p.top_p = s.getTopP();
  p.top_k = s.getTopK() == -1 ? 0 : s.getTopK();  // as the JSON parser reads "top_k": -1
  p.min_p = s.getMinP();
  p.presence_penalty = s.getPresencePenalty();
  p.frequency_penalty = s.getFrequencyPenalty();
  p.repetition_penalty = s.getRepetitionPenalty();
  if (s.getHasSeed()) p.seed = static_cast<uint64_t>(s.getSeed());
  p.logprobs = s.getLogprobs();
  r.n = s.getN();
  const auto stop = s.getStop();
  r.stop.resize(stop.size());
  for (uint32_t i = 0; i < stop.size(); ++i)
    if (auto e = copy_text(stop[i], "stop[" + std::to_string(i) + "]", r.stop[i])) return e;
  const auto ids = s.getStopTokenIds();
  r.stop_token_ids = to_vector(ids);
  r.ignore_eos = s.getIgnoreEos();
  r.skip_special_tokens = s.getSkipSpecialTokens();
  if (auto e = copy_text(s.getUser(), "user", r.user)) return e;
  r.cache = s.getCache();
  return std::nullopt;
}

std::variant<api_request, failure> checked(api_request r) {
  if (auto e = validate_api_request(r)) return std::move(*e);
  return r;
}

}  // namespace

std::variant<api_request, failure> from_rpc(schema::GenerateRequest::Reader request) {
  api_request r;
  r.endpoint = api_endpoint::completions;
  if (auto e = copy_text(request.getModel(), "model", r.model)) return *e;
  const auto prompt = request.getPrompt();
  if (prompt.isText()) {
    std::string text;
    if (auto e = copy_text(prompt.getText(), "prompt", text)) return *e;
    r.prompt_text = std::move(text);
  } else {
    const auto tokens = prompt.getTokens();
    r.prompt_tokens = to_vector(tokens);
  }
  if (auto e = copy_sampling(request.getSampling(), r)) return *e;
  return checked(std::move(r));
}

std::variant<api_request, failure> from_rpc(schema::ChatRequest::Reader request) {
  api_request r;
  r.endpoint = api_endpoint::chat_completions;
  if (auto e = copy_text(request.getModel(), "model", r.model)) return *e;
  const auto messages = request.getMessages();
  r.messages.reserve(messages.size());
  for (uint32_t i = 0; i < messages.size(); ++i) {
    const std::string at = "messages[" + std::to_string(i) + "]";
    engine::chat::chat_message m;
    if (auto e = copy_text(messages[i].getRole(), at + ".role", m.role)) return *e;
    if (auto e = copy_text(messages[i].getContent(), at + ".content", m.content)) return *e;
    r.messages.push_back(std::move(m));
  }
  r.add_generation_prompt = request.getAddGenerationPrompt();
  if (auto e = copy_sampling(request.getSampling(), r)) return *e;
  if (auto e = validate_api_request(r)) return std::move(*e);  // roles as given, "developer" included
  for (auto& m : r.messages)
    if (m.role == "developer") m.role = "system";  // as the JSON parser maps it
  return r;
}

kj::Exception to_exception(const failure& e) {
  const bool retry = e.code == failure_code::overloaded || e.code == failure_code::unavailable;
  const auto type = retry ? kj::Exception::Type::OVERLOADED : kj::Exception::Type::FAILED;
  // Cap'n Proto exceptions carry a type and a text only: the retry hint goes into the text.
  std::string text = e.message;
  if (retry && e.retry_after_s > 0) text += " (retry after " + std::to_string(e.retry_after_s) + " s)";
  return kj::Exception(type, __FILE__, __LINE__, kj::heapString(text.data(), text.size()));
}

}  // namespace troupe::frontend::rpc
