// join_router and when_down (see cluster_join.hpp).
#include "cli/cluster_join.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

#include "common/tls/cluster_tls.hpp"
#include <memory>
#include <thread>

namespace troupe::cli {

using namespace troupe::cluster;

kj::Promise<bool> when_down(caf::actor_system& system, const caf::actor& who, caf::actor& watcher) {
  auto pair = kj::newPromiseAndCrossThreadFulfiller<bool>();
  auto fulfiller = std::make_shared<kj::Own<kj::CrossThreadPromiseFulfiller<bool>>>(kj::mv(pair.fulfiller));
  // The watcher keeps only `who`'s address: a strong handle would keep a stopped actor from being
  // destroyed for as long as the watcher lives, and the actor system waits for that at shutdown.
  watcher = system.spawn([addr = who.address(), fulfiller](caf::event_based_actor* self) {
    self->monitor(addr);
    self->set_down_handler([self, fulfiller](caf::down_msg& dm) {
      (*fulfiller)->fulfill(dm.reason == caf::exit_reason::normal);
      self->quit();
    });
    return caf::behavior{[](caf::unit_t) {}};
  });
  return kj::mv(pair.promise);
}

expected<router_actor> join_router(caf::actor_system& system, const cluster::host_port& where, double timeout_s) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  std::string last;
  while (true) {
    auto r = tls::connect_over_cluster<router_actor>(system, where);
    if (r) return *r;
    last = system.render(r.error());
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return fail("--join " + where.host + ":" + std::to_string(where.port) + ": no router reachable within " +
              std::to_string(int(timeout_s)) + " s (" + last + ")");
}

}  // namespace troupe::cli
