// A node's lifetime (see node.hpp): the checks, the actor system and event loop, the roles it runs
// (cache_role, router_role, worker_role: each starts itself and stops in its destructor) and the
// wait for a stop.
#include "cli/node.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <kj/async-io.h>
#include <kj/async-unix.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <fcntl.h>

#include <atomic>
#include <csignal>
#include <fstream>
#include <thread>

#include "cli/cache_role.hpp"
#include "cli/node_env.hpp"
#include "cli/autoscaler_role.hpp"
#include "cli/router_role.hpp"
#include "cli/worker_role.hpp"
#include "common/cluster_config.hpp"

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
std::atomic<int> requested_exit_code{0};
}  // namespace

void request_node_stop(int code) {
  requested_exit_code = code;
  on_stop_signal(0);
}

namespace {

void write_port_file(const std::string& path, const node_ports& ports) {
  if (path.empty()) return;
  const std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp);
    f << "http=" << ports.http << "\ncluster=" << ports.cluster << "\nrpc=" << ports.rpc << "\n";
  }
  std::rename(tmp.c_str(), path.c_str());  // readers never see a half-written file
}

// Every HOST:PORT flag the node's roles will use, checked before anything starts or listens.
expected<void> check_addresses(const node_options& o) {
  const auto check = [](bool used, const std::string& value, const char* flag) -> expected<void> {
    if (!used) return {};
    if (auto at = parse_host_port(value, flag); !at) return at.err();
    return {};
  };
  if (auto ok = check(o.router || o.cache, o.listen, "--listen"); !ok) return ok;
  if (auto ok = check(o.router, o.http, "--http"); !ok) return ok;
  if (auto ok = check(o.worker && !o.router, o.join, "--join"); !ok) return ok;
  if (auto ok = check(o.router && !o.cache_node.empty(), o.cache_node, "--cache-node"); !ok) return ok;
  return check(o.router && !o.rpc.empty(), o.rpc, "--rpc");
}

}  // namespace

expected<void> wait_bound(kj::AsyncIoContext& io, kj::Promise<void>& serving, const uint16_t& port) {
  try {
    while (port == 0 && !serving.poll(io.waitScope)) io.waitScope.poll();
    if (port == 0) serving.wait(io.waitScope);  // settled early: rethrows the error
  } catch (const kj::Exception& e) {
    return fail(e.getDescription().cStr());
  }
  return {};
}

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
  if (!(o.drain_timeout_s >= 0 && o.drain_timeout_s <= 3600))
    return err("--drain-timeout must be in [0, 3600] seconds");
  if (!o.router && (!o.rpc.empty() || !o.api_keys.empty() || !o.api_key_file.empty()))
    return err("--rpc, --api-key and --api-key-file belong to the router role");

  if (auto ok = check_addresses(o); !ok) return err(ok.message());

  auto io = kj::setupAsyncIo();
  // A worker's leader blocks a scheduler thread for each step: one more thread keeps the router,
  // the cache and CAF's own actors responsive meanwhile.
  // ... and a cache with a Redis tier blocks one for each Redis call (at most its timeout).
  const bool redis = !o.cache_redis.empty() && (o.cache || (o.router && !o.no_cache && o.cache_node.empty()));
  node_config cfg(liveness{}, 2 + (o.worker ? 1 : 0) + (redis ? 1 : 0));
  if (auto ok = secure_cluster_port(cfg, o); !ok) return err(ok.message());
  // Declared before the actor system, so destroyed after it: the system's destructor waits for the
  // actors (the router, the cache), and until then they still count into these.
  metrics_registry metrics;
  caf::actor_system system{cfg};
  node_ports ports;
  node_env env{o, system, io, metrics, ports};

  // The roles, each started in the order they depend on one another and stopped in reverse (their
  // destructors): the cache, the router (which asks it), the worker (which joins a router).
  std::unique_ptr<cache_role> cache;
  std::unique_ptr<router_role> router;
  std::unique_ptr<worker_role> worker;
  if (auto c = cache_role::start(env); !c) return err(c.message());
  else cache = std::move(*c);
  kj::Promise<void> serving = kj::NEVER_DONE;
  if (o.router) {
    auto r = router_role::start(env, cache ? cache->handle() : cache_actor{});
    if (!r) return err(r.message());
    router = std::move(*r);
    serving = router->take_serving();
  }
  kj::Promise<bool> router_lost = kj::NEVER_DONE;
  kj::Promise<bool> group_lost = kj::NEVER_DONE;
  if (o.worker) {
    auto w = worker_role::start(env, router ? router->handle() : router_actor{});
    if (!w) return err(w.message());
    worker = std::move(*w);
    router_lost = worker->take_router_lost();
    group_lost = worker->take_group_lost();
  }

  std::unique_ptr<autoscaler_role> scaler;
  if (auto a = autoscaler_role::start(env, router ? router->handle() : router_actor{},
                                       router ? router->view() : nullptr); !a) return err(a.message());
  else scaler = std::move(*a);

  write_port_file(o.port_file, ports);
  if (on_ready) on_ready(ports);

  // Wait for a stop: a signal, the router's loss (worker-only), the group's end, or a server failing.
  // The forks keep the servers and the watches alive past this wait, for the drain.
  int code = 0;
  bool signalled = false;
  capture_stop_signals();
  kj::UnixEventPort::FdObserver stop_signal(io.unixEventPort, stop_pipe[0], kj::UnixEventPort::FdObserver::OBSERVE_READ);
  auto serving_fork = serving.fork();
  auto router_fork = router_lost.fork();
  auto group_fork = group_lost.fork();
  const auto on_router_lost = [&code](bool) {
    spdlog::warn("the router is gone; this worker stops");
    code = 3;
  };
  const auto on_group_lost = [&code](bool drained) {
    if (drained) {
      spdlog::info("the shard group was drained; this worker stops");
      return;
    }
    spdlog::warn("the shard group stopped; this worker stops");
    code = 4;
  };
  auto stop = stop_signal.whenBecomesReadable()
                  .then([&signalled]() { signalled = true; })
                  .exclusiveJoin(router_fork.addBranch().then(on_router_lost))
                  .exclusiveJoin(group_fork.addBranch().then(on_group_lost))
                  .exclusiveJoin(serving_fork.addBranch());
  try {
    stop.wait(io.waitScope);
    if (signalled) {
      // Drain: a router lets its open requests finish (new ones get 503), a worker asks its router to
      // drain its group; both within --drain-timeout. A second signal stops at once.
      char bytes[64];
      while (::read(stop_pipe[0], bytes, sizeof bytes) > 0) {
      }
      auto& timer = io.provider->getTimer();
      const auto timeout = std::chrono::milliseconds(int64_t(o.drain_timeout_s * 1000));
      kj::Promise<void> drained = kj::READY_NOW;
      if (router) {
        drained = router->drain(timer, timeout);
      } else if (worker) {
        spdlog::info("stopping: the router drains this shard group for at most {} s", o.drain_timeout_s);
        worker->leave(system);
        drained = group_fork.addBranch()
                      .then(on_group_lost)
                      .exclusiveJoin(router_fork.addBranch().then(on_router_lost))
                      .exclusiveJoin(timer.afterDelay(timeout.count() * kj::MILLISECONDS).then([]() {
                        spdlog::warn("drain timeout: the shard group still runs requests; stopping it");
                      }));
      }
      drained.exclusiveJoin(stop_signal.whenBecomesReadable().then([]() {
               spdlog::warn("a second stop signal: stopping now");
             }))
          .wait(io.waitScope);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    code = 1;
  } catch (const kj::Exception& e) {
    std::fprintf(stderr, "error: %s\n", e.getDescription().cStr());
    code = 1;
  }
  if (on_stop) on_stop();
  if (const int requested = requested_exit_code.load(); requested != 0) code = requested;
  return code;
}

}  // namespace troupe::cli
