// A node's lifetime (see node.hpp): the actor system, the roles' actors, the HTTP server and the
// wait for a stop.
#include "cli/node.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fcntl.h>

#include <csignal>
#include <fstream>
#include <thread>

#include "cli/cluster_join.hpp"
#include "common/cluster_config.hpp"
#include "common/metrics.hpp"
#include "cache_actor/cache_actor.hpp"
#include "gpu_actor/rendezvous.hpp"
#include "gpu_actor/worker.hpp"
#include "router/http_server.hpp"
#include "router/model_frontend.hpp"
#include "router/router_actor.hpp"
#include "router/rpc_server.hpp"

namespace troupe::cli {

using namespace troupe::cluster;

namespace {

// SIGINT and SIGTERM write a byte into this pipe; the node's event loop watches its read end. Not
// kj's captureSignal: that blocks the signals only in threads created after it, and libraries start
// threads of their own at load time (OpenBLAS), where a blocked-elsewhere signal would still kill
// the process. A handler runs in whichever thread receives the signal.
int stop_pipe[2] = {-1, -1};

void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] auto n = ::write(stop_pipe[1], &byte, 1);
}

}  // namespace

void capture_stop_signals() {
  if (stop_pipe[0] >= 0) return;
  if (::pipe2(stop_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return;
  struct sigaction sa {};
  sa.sa_handler = on_stop_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(SIGINT, &sa, nullptr);
  ::sigaction(SIGTERM, &sa, nullptr);
}

int stop_signal_fd() { return stop_pipe[0]; }

namespace {

std::string default_group_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + "/0";
}

expected<void> register_group(caf::actor_system& system, const router_actor& router, const group_info& info,
                              const gpu_leader_actor& leader) {
  caf::scoped_actor self{system};
  expected<void> out;
  self->request(router, std::chrono::seconds(10), register_atom::value, info, leader)
      .receive([](bool) {},
               [&out, &system](caf::error& e) { out = fail("the router refused the shard group: " + system.render(e)); });
  return out;
}

// Runs the loop until a listener has bound its port (`port` set by its callback) or failed.
expected<void> wait_bound(kj::AsyncIoContext& io, kj::Promise<void>& serving, const uint16_t& port) {
  try {
    while (port == 0 && !serving.poll(io.waitScope)) io.waitScope.poll();
    if (port == 0) serving.wait(io.waitScope);  // settled early: rethrows the error
  } catch (const kj::Exception& e) {
    return fail(e.getDescription().cStr());
  }
  return {};
}

void write_port_file(const std::string& path, const node_ports& ports) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << "http=" << ports.http << "\ncluster=" << ports.cluster << "\nrpc=" << ports.rpc << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());  // readers never see a half-written file
}

}  // namespace

int run_node(const node_options& o, const std::function<void(const node_ports&)>& on_ready,
             const std::function<void()>& on_stop) {
  auto err = [](const std::string& m) {
    std::fprintf(stderr, "error: %s\n", m.c_str());
    return 1;
  };
  if (!o.router && !o.worker && !o.cache) return err("--roles: give at least one of router, worker, cache");
  if ((o.router || o.worker) && o.model.empty())
    return err("--model PATH is needed (the router tokenizes with it, a worker runs it)");
  if (o.worker && !o.router && o.join.empty()) return err("a worker without the router role needs --join HOST:PORT");
  if (o.rank >= 0) {
    if (!o.worker || o.router || o.cache) return err("--rank belongs to worker-only nodes (--roles worker)");
    if (o.tp < 2) return err("--rank " + std::to_string(o.rank) + ": a rank of a shard group needs --tp 2 or more");
    if (o.rank >= o.tp) return err("--rank " + std::to_string(o.rank) + " is not a rank of --tp " + std::to_string(o.tp));
    if (o.name.empty()) return err("--rank needs --group NAME: the leader and its ranks meet under it");
    if (o.rank > 0) return run_rank_node(o);
  }
  if (o.rank_timeout_s <= 0 || o.rank_timeout_s > 3600)
    return err("--rank-timeout must be in (0, 3600] seconds");
  if (!o.router && (!o.rpc.empty() || !o.api_keys.empty() || !o.api_key_file.empty()))
    return err("--rpc, --api-key and --api-key-file belong to the router role");

  // The front end first: it loads the tokenizer and checks the model before anything listens.
  std::unique_ptr<router::model_frontend> frontend;
  if (o.router) {
    auto fe = router::model_frontend::load(o.model);
    if (!fe) return err(fe.message());
    frontend = std::move(*fe);
  }
  std::shared_ptr<router::routing_policy> policy;
  if (o.router) {
    router::routing_options ro;
    ro.block_size = o.engine.block_size;
    auto p = router::make_routing_policy(o.routing, ro);
    if (!p) return err("--routing: " + p.message());
    policy = std::move(*p);
  }
  host_port listen_at, http_at, join_at, cache_at;
  if (o.router || o.cache) {
    auto l = parse_host_port(o.listen, "--listen");
    if (!l) return err(l.message());
    listen_at = *l;
  }
  if (o.router) {
    auto h = parse_host_port(o.http, "--http");
    if (!h) return err(h.message());
    http_at = *h;
  }
  if (o.worker && !o.router) {
    auto j = parse_host_port(o.join, "--join");
    if (!j) return err(j.message());
    join_at = *j;
  }
  if (o.router && !o.cache_node.empty()) {
    auto c = parse_host_port(o.cache_node, "--cache-node");
    if (!c) return err(c.message());
    cache_at = *c;
  }
  router::api_keys keys;
  if (o.router) {
    auto k = router::api_keys::load(o.api_keys, o.api_key_file);
    if (!k) return err(k.message());
    keys = std::move(*k);
  }
  // The response cache lives here when this node has the cache role, or is a router without
  // --no-cache or --cache-node.
  const bool local_cache = o.cache || (o.router && !o.no_cache && o.cache_node.empty());
  cache::cache_options co;
  co.max_bytes = o.cache_max_bytes;
  co.ttl = std::chrono::seconds(o.cache_ttl_s);
  co.redis = o.cache_redis;
  if (local_cache) {
    if (auto ok = cache::validate(co); !ok) return err(ok.message());
  }

  auto io = kj::setupAsyncIo();
  // A worker's leader blocks a scheduler thread for each step: one more thread keeps the router,
  // the cache and CAF's own actors responsive meanwhile.
  node_config cfg(liveness{}, o.worker ? 3 : 2);
  // Declared before the actor system, so destroyed after it: the system's destructor waits for the
  // actors (the router, the cache), and until then they still count into these.
  metrics_registry metrics;
  router::request_ids ids;
  caf::actor_system system{cfg};
  auto streams = std::make_shared<router::stream_registry>();
  auto view = std::make_shared<router::cluster_view>();
  node_ports ports;
  router_actor router_handle;
  gpu_leader_actor leader;
  cache_actor cache_handle;
  std::unique_ptr<router::http_frontend> http;
  kj::Promise<void> serving = kj::NEVER_DONE;
  caf::actor watcher, group_watcher;
  rendezvous_actor rendezvous;
  auto shutdown = [&router_handle, &leader, &watcher, &group_watcher, &cache_handle, &rendezvous]() {
    if (watcher) caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    if (group_watcher) caf::anon_send_exit(group_watcher, caf::exit_reason::user_shutdown);
    if (rendezvous) caf::anon_send_exit(rendezvous, caf::exit_reason::user_shutdown);
    if (cache_handle) caf::anon_send_exit(cache_handle, caf::exit_reason::user_shutdown);
    if (leader) caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
    if (router_handle) caf::anon_send_exit(router_handle, caf::exit_reason::user_shutdown);
  };

  if (local_cache) cache_handle = cache::spawn_cache(system, co, &metrics);
  if (o.cache && !o.router) {  // a cache node: routers reach its actor on the cluster port
    auto port = system.middleman().publish(cache_handle, listen_at.port, listen_at.host.c_str(), true);
    if (!port) {
      shutdown();
      return err("--listen " + o.listen + ": " + system.render(port.error()));
    }
    ports.cluster = *port;
    std::fprintf(stderr, "troupe: response cache on cluster port %s:%u (%lld bytes, ttl %lld s%s%s)\n",
                 listen_at.host.c_str(), ports.cluster, (long long)co.max_bytes, (long long)o.cache_ttl_s,
                 co.redis.empty() ? "" : ", redis ", co.redis.c_str());
  }
  if (o.router && !o.cache_node.empty()) {
    auto c = system.middleman().remote_actor<cache_actor>(cache_at.host, cache_at.port);
    if (!c) {
      shutdown();
      return err("--cache-node " + o.cache_node + ": " + system.render(c.error()));
    }
    cache_handle = *c;
  }

  if (o.router) {
    router::router_options ro;
    ro.revision = frontend->revision();
    ro.policy = policy;
    ro.cache = cache_handle;
    ro.metrics = &metrics;
    router_handle = router::spawn_router(system, std::move(ro), streams, view);
    auto port = system.middleman().publish(router_handle, listen_at.port, listen_at.host.c_str(), true);
    if (!port) {
      shutdown();
      return err("--listen " + o.listen + ": " + system.render(port.error()));
    }
    ports.cluster = *port;
    router::frontend_context ctx;
    ctx.model = frontend.get();
    ctx.router = router_handle;
    ctx.streams = streams;
    ctx.view = view;
    ctx.metrics = &metrics;
    ctx.ids = &ids;
    ctx.keys = &keys;
    ctx.cache.enabled = static_cast<bool>(cache_handle);
    ctx.cache.allow_nondeterministic = o.cache_nondeterministic;
    ctx.protect_metrics = o.protect_metrics;
    http = std::make_unique<router::http_frontend>(ctx);
    serving = http->listen(io, http_at, [&ports](uint16_t p) { ports.http = p; }).eagerlyEvaluate(nullptr);
    if (auto bound = wait_bound(io, serving, ports.http); !bound) {
      shutdown();
      return err("--http " + o.http + ": " + bound.message());
    }
    // --- The Cap'n Proto API (router/rpc_server.hpp), beside HTTP on the same loop and context. ---
    // The frontend rides on its listen promise (destroyed with it); that promise joins `serving`,
    // so a failing RPC listener stops the node as a failing HTTP one does.
    if (!o.rpc.empty()) {
      auto rpc_at = parse_host_port(o.rpc, "--rpc");
      if (!rpc_at) {
        shutdown();
        return err(rpc_at.message());
      }
      auto rpc = kj::heap<router::rpc_frontend>(ctx);
      auto rpc_serving = rpc->listen(io, *rpc_at, [&ports](uint16_t p) { ports.rpc = p; }).eagerlyEvaluate(nullptr);
      if (auto bound = wait_bound(io, rpc_serving, ports.rpc); !bound) {
        shutdown();
        return err("--rpc " + o.rpc + ": " + bound.message());
      }
      serving = serving.exclusiveJoin(rpc_serving.attach(kj::mv(rpc)));
      std::fprintf(stderr, "troupe: router serving Cap'n Proto RPC on %s:%u\n", rpc_at->host.c_str(), ports.rpc);
    }
    // --- end of the Cap'n Proto API ---
    std::fprintf(stderr, "troupe: router serving '%s' on http://%s:%u (cluster port %s:%u, routing %s, %s, %s)\n",
                 frontend->name().c_str(), http_at.host.c_str(), ports.http, listen_at.host.c_str(), ports.cluster,
                 std::string(policy->name()).c_str(), cache_handle ? "response cache on" : "no response cache",
                 keys.enabled() ? "API keys required" : "no API keys");
  }

  kj::Promise<bool> router_lost = kj::NEVER_DONE;
  kj::Promise<bool> group_lost = kj::NEVER_DONE;
  if (o.worker) {
    // The router first: a group whose ranks are processes publishes its rendezvous there.
    router_actor target = router_handle;
    if (!o.router) {
      auto r = join_router(system, join_at, o.join_timeout_s);
      if (!r) {
        shutdown();
        return err(r.message());
      }
      target = *r;
      router_lost = when_down(system, caf::actor_cast<caf::actor>(target), watcher);
    }
    gpu_actor::worker_options wo;
    wo.model_path = o.model;
    wo.model_name = router::model_name_for(o.model);
    wo.revision = router::model_revision_for(o.model);
    wo.group_name = o.name.empty() ? default_group_name() : o.name;
    wo.threads = o.threads;
    wo.tp = o.tp;
    wo.device = o.device;
    wo.rank_address = o.rank_address;
    wo.rank_timeout = std::chrono::milliseconds(int64_t(o.rank_timeout_s * 1000));
    wo.join_timeout = std::chrono::milliseconds(int64_t(o.join_timeout_s * 1000));
    wo.engine = o.engine;
    if (o.rank == 0) {
      rendezvous = gpu_actor::spawn_rendezvous(system);
      caf::anon_send(target, rendezvous_atom::value, wo.group_name, rendezvous);
      wo.rank_store = gpu_actor::make_caf_store(system, rendezvous);
      // The ranks may start before or after this node: they wait for the rendezvous, and this node
      // waits for them as long as they keep trying to join (--join-timeout).
      std::fprintf(stderr, "troupe: shard group %s waiting for ranks 1..%d\n", wo.group_name.c_str(), o.tp - 1);
    }
    group_info info;
    auto res = gpu_actor::load_worker(wo, info);
    if (!res) {
      shutdown();
      return err(res.message());
    }
    leader = gpu_actor::spawn_leader(system, std::move(*res), info, caf::actor_cast<load_sink_actor>(target));
    group_lost = when_down(system, caf::actor_cast<caf::actor>(leader), group_watcher);
    if (auto ok = register_group(system, target, info, leader); !ok) {
      shutdown();
      return err(ok.message());
    }
    std::fprintf(stderr, "troupe: shard group %s serving '%s': KV cache of %lld tokens (%d-token blocks), %d threads, tp %d\n",
                 info.name.c_str(), info.model.c_str(), (long long)info.kv_capacity_tokens, info.block_size,
                 o.threads, o.tp);
  }

  write_port_file(o.port_file, ports);
  if (on_ready) on_ready(ports);

  // Wait for a stop: a signal, the router's loss (worker-only), or the HTTP server failing.
  int code = 0;
  capture_stop_signals();
  kj::UnixEventPort::FdObserver stop_signal(io.unixEventPort, stop_pipe[0], kj::UnixEventPort::FdObserver::OBSERVE_READ);
  auto stop = stop_signal.whenBecomesReadable()
                  .exclusiveJoin(router_lost.then([&code](bool) {
                    std::fprintf(stderr, "troupe: the router is gone; this worker stops\n");
                    code = 3;
                  }))
                  .exclusiveJoin(group_lost.then([&code](bool drained) {
                    if (drained) {
                      std::fprintf(stderr, "troupe: the shard group was drained; this worker stops\n");
                      return;
                    }
                    std::fprintf(stderr, "troupe: the shard group stopped; this worker stops\n");
                    code = 4;
                  }))
                  .exclusiveJoin(kj::mv(serving));
  try {
    stop.wait(io.waitScope);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    code = 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "error: %s\n", e.getDescription().cStr());
    code = 1;
  }
  if (on_stop) on_stop();
  http.reset();
  shutdown();
  return code;
}

}  // namespace troupe::cli
