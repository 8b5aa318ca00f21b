// The autoscaler actor's sender check, the way another actor of the router's node would try it: a
// registry event that does not come from its registry is refused. Real parts: the router actor as
// the registry, the local launcher running a shell that stands in for a worker that never
// registers (so its start timeout must stop it), the fixed policy.
#include "autoscaler/autoscaler_actor.hpp"

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <thread>

#include "autoscaler/local_launcher.hpp"
#include "common/cluster_config.hpp"
#include "router/router_actor.hpp"

namespace troupe::autoscaler {
namespace {

using namespace cluster;
using namespace std::chrono_literals;

TEST(autoscaler_actor, a_registry_event_from_another_actor_is_refused) {
  node_config cfg{liveness{}, 2};
  caf::actor_system sys{cfg};
  router::routing_options ro;
  auto routing = router::make_routing_policy("least-outstanding", ro);
  ASSERT_TRUE(routing) << routing.message();
  router::router_options opts;
  opts.revision = "rev";
  opts.policy = std::move(*routing);
  auto registry = router::spawn_router(sys, std::move(opts), [](token_chunk) { return false; },
                                       std::make_shared<router::cluster_view>());
  auto launcher = std::make_shared<local_launcher>(
      [](const std::string&, const std::string&) -> expected<std::vector<std::string>> {
        return std::vector<std::string>{"-c", "trap 'exit 0' TERM; while :; do sleep 0.05; done"};
      },
      "/bin/sh");
  launcher->set_router("127.0.0.1:1");
  scaling_config sc;
  sc.min_replicas = sc.max_replicas = 1;
  auto policy = make_scaling_policy("fixed", sc);
  ASSERT_TRUE(policy);
  autoscaler_options o;
  o.model = "m";
  o.min_replicas = o.max_replicas = 1;
  o.tick_s = 0.05;
  o.start_timeout_s = 1.0;
  autoscaler_parts parts;
  parts.workers = launcher;
  parts.policy = std::move(*policy);
  parts.registry = caf::actor_cast<registry_actor>(registry);
  auto scaler = spawn_autoscaler(sys, std::move(o), std::move(parts));

  // w0 starts (a shell: it never registers). Another actor claims that w0 joined.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (!launcher->pids().count("w0") && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(10ms);
  ASSERT_TRUE(launcher->pids().count("w0"));
  {
    caf::scoped_actor forger{sys};
    registry_event e;
    e.change = registry_change::joined;
    e.group.info.name = "w0";
    forger->send(scaler, registry_atom::value, e);
  }
  // Refused: w0 still counts as starting, so its start timeout stops it and w1 replaces it. Had
  // the forgery been taken, w0 would count as serving and run on.
  const auto later = std::chrono::steady_clock::now() + 10s;
  while ((launcher->pids().count("w0") || !launcher->pids().count("w1")) && std::chrono::steady_clock::now() < later)
    std::this_thread::sleep_for(20ms);
  EXPECT_FALSE(launcher->pids().count("w0")) << "the forged join was taken";
  EXPECT_TRUE(launcher->pids().count("w1"));

  caf::anon_send_exit(scaler, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(registry, caf::exit_reason::user_shutdown);
  launcher->stop_all(1s);
}

}  // namespace
}  // namespace troupe::autoscaler
