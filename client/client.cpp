// The Cap'n Proto API's C++ client (see client.hpp).
#include "client/client.hpp"

#include <capnp/ez-rpc.h>
#include <kj/async.h>

#include "schema/troupe.capnp.h"

namespace troupe::client {
namespace {

// The server's message without capnp's "remote exception: " prefix.
std::string message_of(const kj::Exception& e) {
  std::string text = e.getDescription().cStr();
  constexpr std::string_view remote = "remote exception: ";
  if (text.rfind(remote, 0) == 0) text.erase(0, remote.size());
  if (e.getType() == kj::Exception::Type::OVERLOADED) text = "unavailable: " + text;
  return text;
}

kj::StringPtr ptr(const std::string& s) { return kj::StringPtr(s.c_str(), s.size()); }

void fill_sampling(schema::Sampling::Builder b, const sampling_options& s) {
  b.setMaxTokens(s.max_tokens);
  b.setTemperature(s.temperature);
  b.setTopP(s.top_p);
  b.setTopK(s.top_k);
  b.setMinP(s.min_p);
  b.setPresencePenalty(s.presence_penalty);
  b.setFrequencyPenalty(s.frequency_penalty);
  b.setRepetitionPenalty(s.repetition_penalty);
  b.setN(s.n);
  auto stop = b.initStop(uint32_t(s.stop.size()));
  for (uint32_t i = 0; i < stop.size(); ++i) stop.set(i, ptr(s.stop[i]));
  auto ids = b.initStopTokenIds(uint32_t(s.stop_token_ids.size()));
  for (uint32_t i = 0; i < ids.size(); ++i) ids.set(i, s.stop_token_ids[i]);
  b.setIgnoreEos(s.ignore_eos);
  b.setSkipSpecialTokens(s.skip_special_tokens);
  if (s.seed) {
    b.setSeed(*s.seed);
    b.setHasSeed(true);
  }
  b.setLogprobs(s.logprobs);
  b.setUser(ptr(s.user));
  b.setCache(s.cache);
}

std::string bytes_of(capnp::Data::Reader d) { return std::string(reinterpret_cast<const char*>(d.begin()), d.size()); }

// What a sink reaches of its call: cleared when the call returns (the server may still hold the
// sink capability and write to it) or when the callback cancels.
struct sink_target {
  const chunk_callback* on_chunk = nullptr;
  kj::Own<kj::PromiseFulfiller<void>> cancel;
};

// The client's end of a generation's stream: hands each chunk to the callback; a callback that
// returns false fulfils `cancel`, which the waiting call races against.
class sink_impl final : public schema::TokenSink::Server {
 public:
  explicit sink_impl(std::shared_ptr<sink_target> target) : target_(std::move(target)) {}

  kj::Promise<void> write(WriteContext context) override {
    if (!target_->on_chunk) return kj::READY_NOW;  // the call is over or cancelled
    const auto in = context.getParams().getChunk();
    chunk c;
    c.sample = int32_t(in.getSample());
    c.text = std::string(in.getText().cStr(), in.getText().size());
    for (auto lp : in.getLogprobs()) {
      token_logprob t{bytes_of(lp.getToken()), lp.getLogprob(), {}};
      for (auto alt : lp.getTop()) t.top.push_back({bytes_of(alt.getToken()), alt.getLogprob()});
      c.logprobs.push_back(std::move(t));
    }
    c.finish_reason = std::string(in.getFinishReason().cStr(), in.getFinishReason().size());
    for (int32_t id : in.getTokenIds()) c.token_ids.push_back(id);
    if (*target_->on_chunk && !(*target_->on_chunk)(c)) {
      target_->on_chunk = nullptr;
      target_->cancel->fulfill();
    }
    return kj::READY_NOW;
  }

 private:
  std::shared_ptr<sink_target> target_;
};

result result_of(schema::GenerateResult::Reader r) {
  result out;
  for (auto f : r.getFinishReasons()) out.finish_reasons.emplace_back(f.cStr(), f.size());
  out.prompt_tokens = r.getPromptTokens();
  out.completion_tokens = r.getCompletionTokens();
  const auto ids = r.getPromptTokenIds();
  out.prompt_token_ids.resize(ids.size());
  for (uint32_t i = 0; i < ids.size(); ++i) out.prompt_token_ids[i] = ids[i];
  return out;
}

}  // namespace

struct client::impl {
  impl(const std::string& host, uint16_t port) : rpc(kj::StringPtr((host + ":" + std::to_string(port)).c_str())) {}

  // Runs a generate or chat request (already filled) to its end, or until the callback cancels.
  template <class Request>
  expected<result> run(Request& req, const chunk_callback& on_chunk) {
    auto cancel = kj::newPromiseAndFulfiller<void>();
    auto target = std::make_shared<sink_target>();
    target->on_chunk = &on_chunk;
    target->cancel = kj::mv(cancel.fulfiller);
    KJ_DEFER(target->on_chunk = nullptr);
    req.setSink(kj::heap<sink_impl>(target));
    bool cancelled = false;
    auto& ws = rpc.getWaitScope();
    try {
      // Dropping the call's promise (when the callback cancels) cancels the call at the server.
      auto done = req.send()
                      .then([](auto&& response) { return kj::Maybe<result>(result_of(response.getResult())); })
                      .exclusiveJoin(cancel.promise.then([&cancelled]() {
                        cancelled = true;
                        return kj::Maybe<result>(nullptr);
                      }));
      auto out = done.wait(ws);
      // The loop runs only inside wait(): turn it once more, so that a cancelled call's Finish
      // message (and the release of the sink) leave now, not at this client's next call.
      ws.poll();
      KJ_IF_MAYBE(r, out) { return kj::mv(*r); }
    } catch (const kj::Exception& e) {
      return fail(message_of(e));
    }
    return fail(cancelled ? "cancelled by the caller" : "the call ended without a result");
  }

  // The model to ask for: the request's, or the server's first.
  expected<std::string> model_for(const std::string& asked) {
    if (!asked.empty()) return asked;
    if (default_model.empty()) {
      auto ms = models();
      if (!ms) return ms.err();
      if (ms->empty()) return fail("the server lists no model");
      default_model = (*ms)[0].id;
    }
    return default_model;
  }

  expected<std::vector<model_info>> models() {
    try {
      auto response = session.modelsRequest().send().wait(rpc.getWaitScope());
      std::vector<model_info> out;
      for (auto m : response.getModels())
        out.push_back({std::string(m.getId().cStr()), int64_t(m.getMaxModelLen()), std::string(m.getOwnedBy().cStr())});
      return out;
    } catch (const kj::Exception& e) {
      return fail(message_of(e));
    }
  }

  capnp::EzRpcClient rpc;
  schema::Session::Client session{nullptr};
  std::string default_model;
};

client::client(std::unique_ptr<impl> p) : impl_(std::move(p)) {}
client::client(client&&) noexcept = default;
client& client::operator=(client&&) noexcept = default;
client::~client() = default;

expected<client> client::connect(const std::string& host, uint16_t port, const std::string& api_key) {
  try {
    auto p = std::make_unique<impl>(host, port);
    auto req = p->rpc.getMain<schema::Troupe>().authenticateRequest();
    req.setApiKey(ptr(api_key));
    auto response = req.send().wait(p->rpc.getWaitScope());
    p->session = response.getSession();
    return client(std::move(p));
  } catch (const kj::Exception& e) {
    return fail(host + ":" + std::to_string(port) + ": " + message_of(e));
  }
}

expected<result> client::generate(const request& r, const chunk_callback& on_chunk) {
  auto model = impl_->model_for(r.model);
  if (!model) return model.err();
  auto req = impl_->session.generateRequest();
  auto b = req.initRequest();
  b.setModel(ptr(*model));
  if (!r.prompt_tokens.empty()) {
    auto ids = b.getPrompt().initTokens(uint32_t(r.prompt_tokens.size()));
    for (uint32_t i = 0; i < ids.size(); ++i) ids.set(i, r.prompt_tokens[i]);
  } else {
    b.getPrompt().setText(ptr(r.prompt));
  }
  fill_sampling(b.initSampling(), r.sampling);
  return impl_->run(req, on_chunk);
}

expected<result> client::chat(const chat_request& r, const chunk_callback& on_chunk) {
  auto model = impl_->model_for(r.model);
  if (!model) return model.err();
  auto req = impl_->session.chatRequest();
  auto b = req.initRequest();
  b.setModel(ptr(*model));
  auto ms = b.initMessages(uint32_t(r.messages.size()));
  for (uint32_t i = 0; i < ms.size(); ++i) {
    ms[i].setRole(ptr(r.messages[i].role));
    ms[i].setContent(ptr(r.messages[i].content));
  }
  b.setAddGenerationPrompt(r.add_generation_prompt);
  fill_sampling(b.initSampling(), r.sampling);
  return impl_->run(req, on_chunk);
}

expected<std::vector<model_info>> client::models() { return impl_->models(); }

expected<health_info> client::health() {
  try {
    auto response = impl_->session.healthRequest().send().wait(impl_->rpc.getWaitScope());
    return health_info{response.getReady(), response.getLiveGroups()};
  } catch (const kj::Exception& e) {
    return fail(message_of(e));
  }
}

}  // namespace troupe::client
