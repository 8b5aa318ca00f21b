// How a worker node reaches its router, and learns when an actor it depends on is gone.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/actor.hpp>
#include <kj/async.h>

#include "common/actors.hpp"
#include "common/cluster_config.hpp"
#include "common/expected.hpp"

namespace troupe::cli {

// The router at `where`, retried every 200 ms until `timeout_s` (the router may still be starting).
[[nodiscard]] expected<cluster::router_actor> join_router(caf::actor_system& system, const cluster::host_port& where,
                                                          double timeout_s);

// Resolves (on the calling thread's kj loop) when `who` goes down: its node died, disconnected or
// stopped it; true when it quit normally (a drained shard group's leader). `watcher` must be kept,
// since CAF ends an actor nobody refers to.
[[nodiscard]] kj::Promise<bool> when_down(caf::actor_system& system, const caf::actor& who, caf::actor& watcher);

}  // namespace troupe::cli
