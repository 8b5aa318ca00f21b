// How the ranks of a shard group meet over CAF: the leader hosts a rendezvous actor (a write-once
// key/value store) and publishes it at the router under the group's name; every rank, a thread of
// the leader's node or a process on another host, reaches it through a rendezvous_store that turns
// the store calls into messages. Gloo then exchanges its TCP addresses through it.
#pragma once

#include <caf/actor_system.hpp>
#include <chrono>
#include <memory>
#include <string>

#include "common/actors.hpp"
#include "common/expected.hpp"
#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::gpu_actor {

// The store actor. Keys are write-once: setting a key again with another value is refused (a
// second rank claiming the same rank number shows up as that error, not as a silent overwrite).
[[nodiscard]] cluster::rendezvous_actor spawn_rendezvous(caf::actor_system& system);

// A rendezvous_store whose calls are requests to `store` (each bounded by `request_timeout`; wait
// polls every 20 ms until its own timeout). Safe from several threads: each call uses its own
// scoped actor. `system` must outlive the returned store.
[[nodiscard]] std::shared_ptr<engine::parallel::rendezvous_store> make_caf_store(
    caf::actor_system& system, cluster::rendezvous_actor store,
    std::chrono::milliseconds request_timeout = std::chrono::seconds(5));

// A rank process: asks the router (`router`) for group `group`'s rendezvous until the leader has
// published it or `timeout` has passed (the error then names the group and the router's answer).
[[nodiscard]] expected<cluster::rendezvous_actor> find_rendezvous(caf::actor_system& system,
                                                                  const cluster::router_actor& router,
                                                                  const std::string& group,
                                                                  std::chrono::milliseconds timeout);

}  // namespace troupe::gpu_actor
