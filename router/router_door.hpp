// How this node's front ends reach the router actor: submit and cancel are sent as a local actor,
// so the router can tell them from what arrives over the cluster port. It takes both from actors of
// its own node only; an anonymous message proves nothing (a remote peer can send one).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include "common/actors.hpp"

namespace troupe::router {

// Thread-safe: the HTTP and RPC servers of a node share one. Outlives every session that uses it.
class router_door {
 public:
  router_door(caf::actor_system& system, cluster::router_actor router);
  ~router_door();  // stops the identity actor (the actor system waits for every actor at shutdown)
  router_door(const router_door&) = delete;
  router_door& operator=(const router_door&) = delete;

  // Routes `r` (through the cache first when `key` is not empty); its chunks come back to the
  // node's stream_registry.
  void submit(const request& r, cluster::cache_key key) const;
  // The client is gone or stopped: abort the request at its group.
  void cancel(int64_t id) const;

  [[nodiscard]] const cluster::router_actor& router() const { return router_; }

 private:
  cluster::router_actor router_;
  caf::actor as_;  // a local actor of this node that only lends its address as the sender
};

}  // namespace troupe::router
