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

#include "common/cluster_config.hpp"
#include "common/metrics.hpp"
#include "gpu_actor/worker.hpp"
#include "router/http_server.hpp"
#include "router/model_frontend.hpp"
#include "router/router_actor.hpp"

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

namespace {

std::string default_group_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + "/0";
}

// Resolves when `who` goes down (its node died, disconnected or stopped it). `watcher` must be kept:
// CAF ends an actor nobody refers to.
kj::Promise<void> when_down(caf::actor_system& system, const router_actor& who, caf::actor& watcher) {
  auto pair = kj::newPromiseAndCrossThreadFulfiller<void>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<void>>>(kj::mv(pair.fulfiller));
  watcher = system.spawn([who, fulfiller](caf::event_based_actor* self) {
    self->monitor(who);
    self->set_down_handler([self, fulfiller](caf::down_msg&) {
      (*fulfiller)->fulfill();
      self->quit();
    });
    return caf::behavior{[](caf::unit_t) {}};
  });
  return kj::mv(pair.promise);
}

// The router this worker joins, retried until the deadline (the router may still be starting).
expected<router_actor> join_router(caf::actor_system& system, const host_port& where, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string last;
  while (true) {
    auto r = system.middleman().remote_actor<router_actor>(where.host, where.port);
    if (r) return *r;
    last = system.render(r.error());
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return fail("--join " + where.host + ":" + std::to_string(where.port) + ": no router reachable within " +
              std::to_string(int(timeout_s)) + " s (" + last + ")");
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

void write_port_file(const std::string& path, const node_ports& ports) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << "http=" << ports.http << "\ncluster=" << ports.cluster << "\n";
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
  if (!o.router && !o.worker) return err("--roles: give at least one of router, worker");
  if (o.model.empty()) return err("--model PATH is needed (the router tokenizes with it, a worker runs it)");
  if (o.worker && !o.router && o.join.empty()) return err("a worker without the router role needs --join HOST:PORT");

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
  host_port listen_at, http_at, join_at;
  if (o.router) {
    auto l = parse_host_port(o.listen, "--listen");
    if (!l) return err(l.message());
    auto h = parse_host_port(o.http, "--http");
    if (!h) return err(h.message());
    listen_at = *l;
    http_at = *h;
  } else {
    auto j = parse_host_port(o.join, "--join");
    if (!j) return err(j.message());
    join_at = *j;
  }

  auto io = kj::setupAsyncIo();
  node_config cfg;
  caf::actor_system system{cfg};
  metrics_registry metrics;
  auto streams = std::make_shared<router::stream_registry>();
  auto view = std::make_shared<router::cluster_view>();
  node_ports ports;
  router_actor router_handle;
  gpu_leader_actor leader;
  std::unique_ptr<router::http_frontend> http;
  kj::Promise<void> serving = kj::NEVER_DONE;
  caf::actor watcher;
  auto shutdown = [&system, &router_handle, &leader, &watcher]() {
    if (watcher) caf::anon_send_exit(watcher, caf::exit_reason::user_shutdown);
    if (leader) caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
    if (router_handle) caf::anon_send_exit(router_handle, caf::exit_reason::user_shutdown);
    (void)system;
  };

  if (o.router) {
    router::router_options ro;
    ro.revision = frontend->revision();
    ro.policy = policy;
    router_handle = router::spawn_router(system, std::move(ro), streams, view);
    auto port = system.middleman().publish(router_handle, listen_at.port, listen_at.host.c_str(), true);
    if (!port) {
      shutdown();
      return err("--listen " + o.listen + ": " + system.render(port.error()));
    }
    ports.cluster = *port;
    http = std::make_unique<router::http_frontend>(*frontend, router_handle, streams, view, metrics);
    serving = http->listen(io, http_at, [&ports](uint16_t p) { ports.http = p; })
                  .eagerlyEvaluate(nullptr);
    // Run the loop until the listener is bound (or failed).
    try {
      while (ports.http == 0 && !serving.poll(io.waitScope)) io.waitScope.poll();
      if (ports.http == 0) serving.wait(io.waitScope);  // settled early: rethrows the error
    } catch (const kj::Exception& e) {
      shutdown();
      return err("--http " + o.http + ": " + std::string(e.getDescription().cStr()));
    }
    std::fprintf(stderr, "troupe: router serving '%s' on http://%s:%u (cluster port %s:%u, routing %s)\n",
                 frontend->name().c_str(), http_at.host.c_str(), ports.http, listen_at.host.c_str(), ports.cluster,
                 std::string(policy->name()).c_str());
  }

  kj::Promise<void> router_lost = kj::NEVER_DONE;
  if (o.worker) {
    gpu_actor::worker_options wo;
    wo.model_path = o.model;
    wo.model_name = router::model_name_for(o.model);
    wo.revision = router::model_revision_for(o.model);
    wo.group_name = o.name.empty() ? default_group_name() : o.name;
    wo.threads = o.threads;
    wo.tp = o.tp;
    wo.engine = o.engine;
    group_info info;
    auto res = gpu_actor::load_worker(wo, info);
    if (!res) {
      shutdown();
      return err(res.message());
    }
    router_actor target = router_handle;
    if (!o.router) {
      auto r = join_router(system, join_at, o.join_timeout_s);
      if (!r) {
        shutdown();
        return err(r.message());
      }
      target = *r;
      router_lost = when_down(system, target, watcher);
    }
    leader = gpu_actor::spawn_leader(system, std::move(*res), info, caf::actor_cast<load_sink_actor>(target));
    if (auto ok = register_group(system, target, info, leader); !ok) {
      shutdown();
      return err(ok.message());
    }
    std::fprintf(stderr, "troupe: shard group %s serving '%s': KV cache of %lld tokens (%d-token blocks), %d threads\n",
                 info.name.c_str(), info.model.c_str(), (long long)info.kv_capacity_tokens, info.block_size,
                 o.threads);
  }

  write_port_file(o.port_file, ports);
  if (on_ready) on_ready(ports);

  // Wait for a stop: a signal, the router's loss (worker-only), or the HTTP server failing.
  int code = 0;
  capture_stop_signals();
  kj::UnixEventPort::FdObserver stop_signal(io.unixEventPort, stop_pipe[0], kj::UnixEventPort::FdObserver::OBSERVE_READ);
  auto stop = stop_signal.whenBecomesReadable()
                  .exclusiveJoin(router_lost.then([&code]() {
                    std::fprintf(stderr, "troupe: the router is gone; this worker stops\n");
                    code = 3;
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
