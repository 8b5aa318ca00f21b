// The response cache role of a node: the cache actor here (`--roles cache`, or a router without
// --no-cache / --cache-node), published on the cluster port when the node has no router; or, for a
// router with --cache-node, the remote cache it uses. Stops its actor when destroyed.
#pragma once

#include <memory>

#include "cli/node_env.hpp"
#include "common/actors.hpp"

namespace troupe::cli {

class cache_role {
 public:
  // Null when this node has no cache at all (a router with --no-cache, or a worker-only node).
  // Errors name the flag (--cache-*, --listen, --cache-node) and what failed.
  [[nodiscard]] static expected<std::unique_ptr<cache_role>> start(node_env& env);
  ~cache_role();
  cache_role(const cache_role&) = delete;
  cache_role& operator=(const cache_role&) = delete;

  [[nodiscard]] const cluster::cache_actor& handle() const { return cache_; }

 private:
  cache_role() = default;
  cluster::cache_actor cache_;
  bool owned_ = false;  // spawned here (stopped here), not a remote node's
};

}  // namespace troupe::cli
