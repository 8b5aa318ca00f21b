// The worker role of a node: one shard group's leader (its ranks as threads of this node, or as
// `--rank R` processes meeting through the rendezvous it publishes at the router), registered with
// the router of this node or the one it joined. Destroyed: its actors are stopped.
#pragma once

#include <memory>

#include "cli/node_env.hpp"
#include "common/actors.hpp"

namespace troupe::cli {

class worker_role {
 public:
  // `local_router`: this node's router, or invalid to join --join's. Loads the model and the engine
  // (and forms the group with --tp), then registers. Errors name the flag, the file or the rank.
  [[nodiscard]] static expected<std::unique_ptr<worker_role>> start(node_env& env, cluster::router_actor local_router);
  ~worker_role();
  worker_role(const worker_role&) = delete;
  worker_role& operator=(const worker_role&) = delete;

  // Resolves when the router this worker joined is gone (never for a router on this node).
  [[nodiscard]] kj::Promise<bool> take_router_lost() { return kj::mv(router_lost_); }
  // Resolves when the group's leader has quit: true when it was drained, false when it failed.
  [[nodiscard]] kj::Promise<bool> take_group_lost() { return kj::mv(group_lost_); }

  // The node stops: the leader asks the router to drain the group (nothing new is routed to it; it
  // quits once what it runs has finished, and the group-lost promise resolves with true).
  void leave(caf::actor_system& system);

 private:
  worker_role() = default;
  cluster::gpu_leader_actor leader_;
  cluster::rendezvous_actor rendezvous_;
  caf::actor router_watcher_, group_watcher_;
  kj::Promise<bool> router_lost_ = kj::NEVER_DONE;
  kj::Promise<bool> group_lost_ = kj::NEVER_DONE;
};

}  // namespace troupe::cli
