// The Cap'n Proto client API (see rpc_server.hpp).
#include "frontend/rpc/rpc_server.hpp"

#include <capnp/rpc-twoparty.h>
#include <capnp/rpc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <spdlog/spdlog.h>

#include "frontend/core/session_driver.hpp"
#include "frontend/rpc/preauth_stream.hpp"
#include "frontend/rpc/rpc_request.hpp"
#include "schema/troupe.capnp.h"

namespace troupe::frontend::rpc {

struct rpc_frontend::shared {
  shared(frontend_context c, rpc_options o)
      : ctx(std::move(c)),
        options(o),
        in_flight(ctx.metrics->gauge("troupe_rpc_generations_in_flight",
                                     "Generations this router is serving over Cap'n Proto RPC now.")) {}

  // Counts a finished call by method and outcome (ok, invalid, unavailable, failed, cancelled).
  void count(const char* method, const char* outcome) {
    ctx.metrics
        ->counter("troupe_rpc_requests_total", "Cap'n Proto API calls by method and outcome.",
                  {{"method", method}, {"outcome", outcome}})
        .inc();
  }

  frontend_context ctx;
  rpc_options options;
  gauge& in_flight;
};

namespace {

using shared_state = rpc_frontend::shared;

const char* outcome_of(const failure& e) {
  switch (e.code) {
    case failure_code::overloaded:
    case failure_code::unavailable: return "unavailable";
    case failure_code::invalid_request:
    case failure_code::context_length:
    case failure_code::not_found:
    case failure_code::unauthenticated: return "invalid";
    default: return "failed";
  }
}

// One generate / chat call from its request to its result; destroyed with the call's promise, which
// destroys the session and so cancels an unfinished request at its group.
struct generation {
  generation(shared_state& s, const char* m) : state(s), method(m) { state.in_flight.add(1); }
  ~generation() {
    state.in_flight.add(-1);
    if (!outcome) state.count(method, "cancelled");  // the client cancelled or left
  }
  generation(const generation&) = delete;
  generation& operator=(const generation&) = delete;

  shared_state& state;
  const char* method;
  const char* outcome = nullptr;
  std::unique_ptr<completion_session> session;
  schema::TokenSink::Client sink{nullptr};
  std::vector<int32_t> prompt;
  std::vector<std::string> finish;  // per sample
  std::vector<choice_delta> pending;  // deltas of the last poll still to write
  size_t next = 0;
  session_writer write;               // write_update
};

void fill_chunk(schema::Chunk::Builder chunk, const choice_delta& d) {
  chunk.setSample(uint32_t(d.index));
  chunk.setText(kj::StringPtr(d.text.c_str(), d.text.size()));
  auto ids = chunk.initTokenIds(uint32_t(d.token_ids.size()));
  for (size_t i = 0; i < d.token_ids.size(); ++i) ids.set(uint32_t(i), d.token_ids[i]);
  if (!d.logprobs.empty()) {
    auto lps = chunk.initLogprobs(uint32_t(d.logprobs.size()));
    for (uint32_t i = 0; i < lps.size(); ++i) {
      const auto& t = d.logprobs[i];
      auto out = lps[i];
      out.setToken(kj::arrayPtr(reinterpret_cast<const kj::byte*>(t.token.data()), t.token.size()));
      out.setLogprob(t.logprob);
      auto top = out.initTop(uint32_t(t.top.size()));
      for (uint32_t k = 0; k < top.size(); ++k) {
        top[k].setToken(kj::arrayPtr(reinterpret_cast<const kj::byte*>(t.top[k].token.data()), t.top[k].token.size()));
        top[k].setLogprob(t.top[k].logprob);
      }
    }
  }
  if (d.finish_reason) chunk.setFinishReason(kj::StringPtr(d.finish_reason->c_str(), d.finish_reason->size()));
}

// Writes g.pending from g.next on, one write at a time: each waits for the stream's flow control
// (the previous write acknowledged or the window open), so a slow client slows only itself.
kj::Promise<void> write_pending(generation& g) {
  while (g.next < g.pending.size()) {
    const auto& d = g.pending[g.next++];
    // A delta with no text may still carry token ids (a token that ends inside a UTF-8 character,
    // or text held back by a possible stop string): the chunk's ids must list every token.
    if (d.text.empty() && d.logprobs.empty() && d.token_ids.empty() && !d.finish_reason) continue;
    auto req = g.sink.writeRequest();
    fill_chunk(req.initChunk(), d);
    return req.send().then([&g]() { return write_pending(g); });
  }
  return kj::READY_NOW;
}

// Writes one update of the session to the sink; a failed request fails the call after what
// streamed before it (before its first token, or its group was lost after) reached the sink.
kj::Promise<void> write_update(generation& g, session_update& u) {
  for (const auto& d : u.deltas)
    if (d.finish_reason) g.finish[size_t(d.index)] = *d.finish_reason;
  g.pending = std::move(u.deltas);
  g.next = 0;
  auto written = write_pending(g);
  if (!u.error) return written;
  g.outcome = outcome_of(*u.error);
  g.state.count(g.method, g.outcome);
  return written.then([e = *u.error]() -> kj::Promise<void> { return to_exception(e); });
}

class session_impl final : public schema::Session::Server {
 public:
  session_impl(shared_state& state, const key_entry* key) : state_(state), key_(key) {}

  kj::Promise<void> generate(GenerateContext context) override {
    auto params = context.getParams();
    return run(context, from_rpc(params.getRequest()), params.getSink(), "generate");
  }

  kj::Promise<void> chat(ChatContext context) override {
    auto params = context.getParams();
    return run(context, from_rpc(params.getRequest()), params.getSink(), "chat");
  }

  kj::Promise<void> models(ModelsContext context) override {
    const auto& model = *state_.ctx.model;
    auto list = context.getResults().initModels(1);
    list[0].setId(kj::StringPtr(model.name().c_str(), model.name().size()));
    list[0].setMaxModelLen(uint32_t(std::max<int64_t>(model.max_context(), 0)));
    list[0].setOwnedBy("troupe");
    state_.count("models", "ok");
    return kj::READY_NOW;
  }

  kj::Promise<void> health(HealthContext context) override {
    const size_t live = state_.ctx.view->live_groups();
    auto results = context.getResults();
    results.setReady(live > 0 && !state_.ctx.gate->draining());
    results.setLiveGroups(uint32_t(live));
    state_.count("health", "ok");
    return kj::READY_NOW;
  }

 private:
  template <class Context>
  kj::Promise<void> run(Context& context, std::variant<api_request, failure> parsed, schema::TokenSink::Client sink,
                        const char* method) {
    // Everything is copied out of the request: free its message (a prompt may be megabytes).
    context.releaseParams();
    auto admitted = state_.ctx.gate->admit(key_, state_.ctx.view->room());
    if (auto* refused = std::get_if<failure>(&admitted)) return refuse(method, *refused);
    auto slot = std::move(std::get<admission::ticket>(admitted));
    if (auto* e = std::get_if<failure>(&parsed)) return refuse(method, *e);
    // The template and tokenizer run on the work pool: a big request must not stall this thread.
    const auto& model = *state_.ctx.model;
    const bool cache = std::get<api_request>(parsed).cache;
    // The job owns the request: a call cancelled meanwhile drops only the promise.
    // Boxed: a variant held in a promise's result trips GCC 12's maybe-uninitialized warning.
    using result = std::variant<troupe::request, failure>;
    auto work = [&model, in = std::move(std::get<api_request>(parsed))]() { return kj::heap<result>(model.prepare(in)); };
    return state_.ctx.pool->run<kj::Own<result>>(kj::mv(work))
        .then([this, context, sink = kj::mv(sink), method, slot = kj::mv(slot), cache](
                  kj::Own<result>&& boxed) mutable -> kj::Promise<void> {
          result& prepared = *boxed;
          if (auto* e = std::get_if<failure>(&prepared)) return refuse(method, *e);
          auto& p = std::get<troupe::request>(prepared);
          p.tenant = key_ != nullptr ? key_->label : std::string();
          p.deadline_ms = state_.ctx.request_timeout_ms;
          return start(context, kj::mv(p), cache, kj::mv(sink), method, kj::mv(slot));
        });
  }

  template <class Context>
  kj::Promise<void> start(Context& context, troupe::request p, bool allow_cache, schema::TokenSink::Client sink,
                          const char* method, admission::ticket slot) {
    const auto& model = *state_.ctx.model;
    if (auto full = slot.add_tokens(int64_t(p.prompt.size()))) return refuse(method, *full);
    if (state_.ctx.view->serving_groups() == 0 && !state_.ctx.view->holding()) {  // holding: the router waits for a group
      return refuse(method, failure{failure_code::unavailable,
                                    "no live shard group: the cluster has no worker serving '" + model.name() + "' yet",
                                    {}});
    }
    context.allowCancellation();  // a cancelled call destroys its generation, which aborts the request
    auto g = kj::heap<generation>(state_, method);
    g->prompt = p.prompt;
    g->finish.resize(size_t(std::max(p.n, 1)));
    g->sink = kj::mv(sink);
    g->session = std::make_unique<completion_session>(model, std::move(p), allow_cache, state_.ctx.ids->next(),
                                                      *state_.ctx.door, state_.ctx.streams, state_.ctx.cache);
    g->session->hold(std::move(slot));
    g->session->start();
    auto& ref = *g;
    ref.write = [&ref](session_update& u) { return write_update(ref, u); };
    return drive_session(*ref.session, ref.write)
        .then([&ref, context]() mutable {
          auto result = context.getResults().initResult();
          auto reasons = result.initFinishReasons(uint32_t(ref.finish.size()));
          for (uint32_t i = 0; i < reasons.size(); ++i)
            reasons.set(i, kj::StringPtr(ref.finish[i].c_str(), ref.finish[i].size()));
          const auto usage = ref.session->usage();
          result.setPromptTokens(uint32_t(usage.prompt_tokens));
          result.setCompletionTokens(uint32_t(usage.completion_tokens));
          auto ids = result.initPromptTokenIds(uint32_t(ref.prompt.size()));
          for (uint32_t i = 0; i < ids.size(); ++i) ids.set(i, ref.prompt[i]);
          ref.outcome = "ok";
          ref.state.count(ref.method, "ok");
        })
        .attach(kj::mv(g));
  }

  kj::Promise<void> refuse(const char* method, const failure& e) {
    state_.count(method, outcome_of(e));
    return to_exception(e);
  }

  shared_state& state_;
  const key_entry* key_;  // the key it authenticated with (null: the node has no keys); the node's
                          // api_keys outlive every session
};

class troupe_impl final : public schema::Troupe::Server {
 public:
  troupe_impl(shared_state& state, preauth_stream& stream) : state_(state), stream_(stream) {}

  kj::Promise<void> authenticate(AuthenticateContext context) override {
    const auto key = context.getParams().getApiKey();
    const key_entry* entry = nullptr;
    if (state_.ctx.keys->enabled()) {
      entry = state_.ctx.keys->find(std::string_view(key.cStr(), key.size()));
      if (entry == nullptr) {
        state_.count("authenticate", "invalid");
        return KJ_EXCEPTION(FAILED, "invalid API key");
      }
    }
    state_.count("authenticate", "ok");
    stream_.authenticated();
    context.getResults().setSession(kj::heap<session_impl>(state_, entry));
    return kj::READY_NOW;
  }

 private:
  shared_state& state_;
  preauth_stream& stream_;  // the connection's: lifted bounds once authenticated
};

// One client connection: its stream, the two-party network over it and the RPC system serving the
// bootstrap capability. Destroyed when the peer disconnects (or the listener is dropped).
struct connection {
  connection(shared_state& state, kj::Own<kj::AsyncIoStream> s)
      : stream(kj::heap<preauth_stream>(kj::mv(s), state.options.preauth_bytes)),
        network(*stream, capnp::rpc::twoparty::Side::SERVER, reader_options(state.options)),
        rpc(capnp::makeRpcServer(network, kj::heap<troupe_impl>(state, *stream))) {
    rpc.setFlowLimit(state.options.flow_limit_words);
  }

  static capnp::ReaderOptions reader_options(const rpc_options& o) {
    capnp::ReaderOptions r;
    r.traversalLimitInWords = o.traversal_limit_words;
    r.nestingLimit = o.nesting_limit;
    return r;
  }

  kj::Own<preauth_stream> stream;
  capnp::TwoPartyVatNetwork network;
  capnp::RpcSystem<capnp::rpc::twoparty::VatId> rpc;
};

// Accepts connections until destroyed; owns them, so that destroying it closes them all.
class listener final : private kj::TaskSet::ErrorHandler {
 public:
  listener(shared_state& state, kj::Own<kj::ConnectionReceiver> receiver, kj::Timer& timer)
      : state_(state), receiver_(kj::mv(receiver)), timer_(timer), connections_(*this) {}

  kj::Promise<void> accept_loop() {
    return receiver_->accept().then([this](kj::Own<kj::AsyncIoStream> stream) {
      // Chunks are small and latency matters: no Nagle delay.
      int one = 1;
      KJ_IF_MAYBE(e, kj::runCatchingExceptions([&]() { stream->setsockopt(IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); })) {
        (void)e;  // not TCP (e.g. a Unix socket): nothing to tune
      }
      if (open_ >= state_.options.max_connections) {
        spdlog::warn("rpc: {} connections open (the limit): a new one is closed", open_);
        return accept_loop();  // `stream` goes out of scope: closed
      }
      ++open_;
      auto c = kj::heap<connection>(state_, kj::mv(stream));
      auto& ref = *c;
      // A client that has not authenticated within the timeout is closed.
      auto deadline = timer_.afterDelay(state_.options.auth_timeout.count() * kj::MILLISECONDS).then([&ref]() {
        if (ref.stream->is_authenticated()) return kj::Promise<void>(kj::NEVER_DONE);
        return kj::Promise<void>(kj::Exception(kj::Exception::Type::DISCONNECTED, __FILE__, __LINE__,
                                               kj::heapString("rpc: a client did not authenticate in time")));
      });
      connections_.add(ref.network.onDisconnect().exclusiveJoin(kj::mv(deadline)).attach(kj::mv(c), kj::defer([this]() {
        --open_;
      })));
      return accept_loop();
    });
  }

 private:
  // A connection that ended in an error (garbage bytes, an oversized message): it is gone, the
  // server goes on.
  void taskFailed(kj::Exception&& e) override {
    spdlog::debug("rpc: connection ended: {}", e.getDescription().cStr());
  }

  shared_state& state_;
  kj::Own<kj::ConnectionReceiver> receiver_;
  kj::Timer& timer_;
  size_t open_ = 0;
  kj::TaskSet connections_;
};

}  // namespace

rpc_frontend::rpc_frontend(frontend_context context, rpc_options options)
    : shared_(std::make_unique<shared>(std::move(context), options)) {}

rpc_frontend::~rpc_frontend() = default;

kj::Promise<void> rpc_frontend::listen(kj::AsyncIoContext& io, const cluster::host_port& where,
                                       std::function<void(uint16_t)> on_bound) {
  const std::string address = where.host + ":" + std::to_string(where.port);
  return io.provider->getNetwork()
      .parseAddress(kj::StringPtr(address.c_str()))
      .then([this, &io, on_bound = std::move(on_bound)](kj::Own<kj::NetworkAddress> addr) mutable {
        auto receiver = addr->listen();
        if (on_bound) on_bound(uint16_t(receiver->getPort()));
        auto l = kj::heap<listener>(*shared_, kj::mv(receiver), io.provider->getTimer());
        auto accepting = l->accept_loop();
        return accepting.attach(kj::mv(l), kj::mv(addr));
      });
}

}  // namespace troupe::frontend::rpc
