// The router role (see router_role.hpp).
#include "cli/router_role.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "frontend/rpc/rpc_server.hpp"
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
  role->router_ = router::spawn_router(
      env.system, std::move(ro),
      [streams = role->streams_](token_chunk c) { return streams->deliver(std::move(c)); }, role->view_);
  auto port = env.system.middleman().publish(role->router_, listen->port, listen->host.c_str(), true);
  if (!port) return fail("--listen " + o.listen + ": " + env.system.render(port.error()));
  env.ports.cluster = *port;

  frontend::frontend_context ctx;
  ctx.model = role->model_.get();
  ctx.router = role->router_;
  ctx.streams = role->streams_;
  ctx.view = role->view_;
  ctx.metrics = &env.metrics;
  ctx.ids = &role->ids_;
  ctx.keys = &role->keys_;
  ctx.cache.enabled = static_cast<bool>(cache);
  ctx.cache.allow_nondeterministic = o.cache_nondeterministic;
  ctx.protect_metrics = o.protect_metrics;
  role->http_ = std::make_unique<frontend::http::http_frontend>(ctx);
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
    auto rpc = kj::heap<frontend::rpc::rpc_frontend>(ctx);
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

router_role::~router_role() {
  serving_ = kj::NEVER_DONE;  // the RPC server rides on it: gone before the HTTP server and the model
  http_.reset();
  if (router_) caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
}

}  // namespace troupe::cli
