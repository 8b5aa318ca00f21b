// A shard group's rank other than 0: no scheduler, no sampler, no requests. It allocates the paged
// KV cache the leader's setup names and runs every step the leader broadcasts on its own shard,
// until the leader says stop.
#pragma once

#include "common/expected.hpp"
#include "engine/llama_forward.hpp"
#include "engine/parallel/communicator.hpp"

namespace troupe::engine {

// Blocks the calling thread for the group's lifetime. `fwd` is this rank's shard
// (create_tp_forward over `comm`). Returns {} after the leader's stop, or the error that ended the
// group: the leader or a peer died or hung (the communicator's timeout bounds every wait, and the
// leader sends a keepalive at least every second), or a step failed here (then the leader's
// collectives fail too, since this rank no longer takes part).
[[nodiscard]] expected<void> run_follower(llama_forward& fwd, parallel::communicator& comm);

}  // namespace troupe::engine
