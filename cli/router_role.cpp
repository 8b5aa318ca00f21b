// The router role (see router_role.hpp).
#include "cli/router_role.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "frontend/rpc/rpc_server.hpp"
#include "common/tls/cluster_tls.hpp"
#include "router/router_actor.hpp"
#include "router/routing_policy.hpp"

namespace troupe::cli {

using namespace troupe::cluster;

expected<std::unique_ptr<router_role>> router_role::start(node_env& env, cache_actor cache) {
  const node_options& o = env.options;
  auto role = std::unique_ptr<router_role>(new router_role());
  // The front end first: it loads the tokenizer and checks the model before anything listens.
  auto model = frontend::model_frontend::load(o.model);
  if (!model) return model.err();
  role->model_ = std::move(*model);
  router::routing_options routing;
  routing.block_size = o.engine.block_size;
  auto policy = router::make_routing_policy(o.routing, routing);
  if (!policy) return fail("--routing: " + policy.message());
  auto listen = parse_host_port(o.listen, "--listen");
  if (!listen) return listen.err();
  auto http_at = parse_host_port(o.http, "--http");
  if (!http_at) return http_at.err();
  auto keys = frontend::api_keys::load(o.api_keys, o.api_key_file);
  if (!keys) return keys.err();
  role->keys_ = std::move(*keys);

  router::router_options ro;
  ro.revision = role->model_->revision();
  const std::string policy_name(policy->get()->name());
  ro.policy = std::shared_ptr<router::routing_policy>(std::move(*policy));
  ro.cache = cache;
  ro.metrics = &env.metrics;
  if (o.group_queue < 0 || o.group_queue > 100000) return fail("--group-queue must be in [0, 100000]");
  ro.group_queue = o.group_queue;
  ro.hold_s = o.hold_timeout_s;
  ro.hold_max = o.hold_max;
  for (const auto& k : role->keys_.entries()) ro.tenant_weights[k.label] = k.weight;
  role->router_ = router::spawn_router(
      env.system, std::move(ro),
      [streams = role->streams_](token_chunk c) { return streams->deliver(std::move(c)); }, role->view_);
  auto port = tls::publish_on_cluster(env.system, role->router_, *listen);
  if (!port) return fail("--listen " + o.listen + ": " + env.system.render(port.error()));
  env.ports.cluster = *port;

  frontend::frontend_context ctx;
  ctx.model = role->model_.get();
  role->door_ = std::make_unique<router::router_door>(env.system, role->router_);
  ctx.door = role->door_.get();
  ctx.streams = role->streams_;
  ctx.view = role->view_;
  ctx.metrics = &env.metrics;
  ctx.ids = &role->ids_;
  ctx.keys = &role->keys_;
  ctx.cache.enabled = static_cast<bool>(cache);
  ctx.cache.allow_nondeterministic = o.cache_nondeterministic;
  ctx.protect_metrics = o.protect_metrics;
  ctx.insecure_cluster = o.insecure_cluster;
  frontend::admission_limits limits;
  limits.max_queued_requests = o.max_queued_requests;
  limits.max_queued_tokens = o.max_queued_tokens;
  if (limits.max_queued_requests < 1) return fail("--max-queued-requests must be at least 1");
  if (limits.max_queued_tokens < 1) return fail("--max-queued-tokens must be at least 1");
  if (!(o.max_queue_wait_s >= 0 && o.max_queue_wait_s <= 3600)) return fail("--max-queue-wait must be in [0, 3600] seconds");
  limits.max_queue_wait_s = o.max_queue_wait_s;
  limits.min_queued_requests = std::min<int64_t>(2, limits.max_queued_requests);
  role->gate_ = std::make_unique<frontend::admission>(limits);
  ctx.gate = role->gate_.get();
  if (o.prepare_threads < 1 || o.prepare_threads > 64) return fail("--prepare-threads must be in [1, 64]");
  role->pool_ = std::make_unique<frontend::work_pool>(o.prepare_threads);
  ctx.pool = role->pool_.get();
  if (!(o.request_timeout_s >= 0 && o.request_timeout_s <= 86400 * 7))
    return fail("--request-timeout must be in [0, 604800] seconds");
  ctx.request_timeout_ms = int64_t(o.request_timeout_s * 1000);
  frontend::http::http_options http;
  const auto ms = [](double s) { return std::chrono::milliseconds(int64_t(s * 1000)); };
  for (auto [value, flag] : {std::pair{o.http_header_timeout_s, "--http-header-timeout"},
                             std::pair{o.http_body_timeout_s, "--http-body-timeout"},
                             std::pair{o.http_idle_timeout_s, "--http-idle-timeout"}})
    if (!(value > 0 && value <= 3600)) return fail(std::string(flag) + " must be in (0, 3600] seconds");
  if (o.http_max_connections < 1 || o.http_max_connections > 1000000)
    return fail("--http-max-connections must be in [1, 1000000]");
  http.header_timeout = ms(o.http_header_timeout_s);
  http.body_timeout = ms(o.http_body_timeout_s);
  http.idle_timeout = ms(o.http_idle_timeout_s);
  http.max_connections = size_t(o.http_max_connections);
  role->http_ = std::make_unique<frontend::http::http_frontend>(ctx, http);
  node_ports& ports = env.ports;
  role->serving_ =
      role->http_->listen(env.io, *http_at, [&ports](uint16_t p) { ports.http = p; }).eagerlyEvaluate(nullptr);
  if (auto bound = wait_bound(env.io, role->serving_, ports.http); !bound)
    return fail("--http " + o.http + ": " + bound.message());
  // The Cap'n Proto API beside HTTP, on the same loop and context. The server rides on its listen
  // promise, which joins `serving_`: a failing RPC listener stops the node as a failing HTTP one does.
  if (!o.rpc.empty()) {
    auto rpc_at = parse_host_port(o.rpc, "--rpc");
    if (!rpc_at) return rpc_at.err();
    frontend::rpc::rpc_options ro;
    if (!(o.rpc_auth_timeout_s > 0 && o.rpc_auth_timeout_s <= 3600))
      return fail("--rpc-auth-timeout must be in (0, 3600] seconds");
    if (o.rpc_max_connections < 1 || o.rpc_max_connections > 1000000)
      return fail("--rpc-max-connections must be in [1, 1000000]");
    if (o.rpc_preauth_bytes < 1024 || o.rpc_preauth_bytes > (int64_t(1) << 30))
      return fail("--rpc-preauth-bytes must be in [1024, 2^30]");
    ro.auth_timeout = ms(o.rpc_auth_timeout_s);
    ro.max_connections = size_t(o.rpc_max_connections);
    ro.preauth_bytes = size_t(o.rpc_preauth_bytes);
    auto rpc = kj::heap<frontend::rpc::rpc_frontend>(ctx, ro);
    auto rpc_serving = rpc->listen(env.io, *rpc_at, [&ports](uint16_t p) { ports.rpc = p; }).eagerlyEvaluate(nullptr);
    if (auto bound = wait_bound(env.io, rpc_serving, ports.rpc); !bound)
      return fail("--rpc " + o.rpc + ": " + bound.message());
    role->serving_ = role->serving_.exclusiveJoin(rpc_serving.attach(kj::mv(rpc)));
    spdlog::info("router serving Cap'n Proto RPC on {}:{}", rpc_at->host, ports.rpc);
  }
  spdlog::info("router serving '{}' on http://{}:{} (cluster port {}:{}, routing {}, {}, {})", role->model_->name(),
               http_at->host, ports.http, listen->host, ports.cluster, policy_name,
               cache ? "response cache on" : "no response cache",
               role->keys_.enabled() ? "API keys required" : "no API keys");
  return role;
}

namespace {

// Resolves once `streams` has no open request, or at `deadline`.
kj::Promise<void> until_closed(kj::Timer& timer, const frontend::stream_registry& streams,
                               kj::TimePoint deadline) {
  if (streams.size() == 0 || timer.now() >= deadline) return kj::READY_NOW;
  return timer.afterDelay(20 * kj::MILLISECONDS).then([&timer, &streams, deadline]() {
    return until_closed(timer, streams, deadline);
  });
}

}  // namespace

kj::Promise<void> router_role::drain(kj::Timer& timer, std::chrono::milliseconds timeout) {
  const int32_t retry_after = int32_t(std::max<int64_t>(1, timeout.count() / 1000));
  gate_->start_draining(retry_after);
  spdlog::info("draining: {} open requests may finish within {} s; new requests get 503", streams_->size(),
               timeout.count() / 1000.0);
  const kj::TimePoint deadline = timer.now() + timeout.count() * kj::MILLISECONDS;
  return until_closed(timer, *streams_, deadline)
      .then([this, &timer]() {
        if (const size_t open = streams_->size(); open > 0) {
          spdlog::warn("drain timeout: ending {} open requests with an error", open);
          streams_->fail_all({failure_code::unavailable,
                              "the server shut down before this request finished (its drain timeout passed)", {}, 0});
        }
        return until_closed(timer, *streams_, timer.now() + 2 * kj::SECONDS);
      })
      .then([this, &timer]() {
        return http_->drain().exclusiveJoin(timer.afterDelay(2 * kj::SECONDS).then([]() {
          spdlog::warn("drain: HTTP connections still open after 2 s; closing them");
        }));
      });
}

router_role::~router_role() {
  serving_ = kj::NEVER_DONE;  // the RPC server rides on it: gone before the HTTP server and the model
  http_.reset();
  if (router_) caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
}

}  // namespace troupe::cli
