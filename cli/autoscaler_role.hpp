// The autoscaler role of a node (beside the router; `troupe up` runs it by default): the
// autoscaler actor following the router's registry and starting workers through the node's
// launcher. Destroyed: the actor stops, then every worker it started is stopped (SIGTERM: drained,
// then SIGKILL after 5 s).
#pragma once

#include <memory>

#include "cli/node_env.hpp"
#include "common/actors.hpp"
#include "router/cluster_view.hpp"

namespace troupe::cli {

class autoscaler_role {
 public:
  // Null when the node has no launcher (no autoscaler). Errors name the flag.
  // `view`: where /health learns that the model failed (may be null).
  [[nodiscard]] static expected<std::unique_ptr<autoscaler_role>> start(node_env& env, const cluster::router_actor& router,
                                                                       std::shared_ptr<router::cluster_view> view);
  ~autoscaler_role();
  autoscaler_role(const autoscaler_role&) = delete;
  autoscaler_role& operator=(const autoscaler_role&) = delete;

 private:
  autoscaler_role(caf::actor_system& system, std::shared_ptr<autoscaler::launcher> launcher)
      : system_(system), launcher_(std::move(launcher)) {}
  caf::actor_system& system_;
  std::shared_ptr<autoscaler::launcher> launcher_;
  cluster::autoscaler_actor actor_;
};

}  // namespace troupe::cli
