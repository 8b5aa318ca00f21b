// The leader-to-ranks protocol of a shard group, carried by the group's own communicator (a
// broadcast from rank 0), so plans and the forward pass's all-reduces share one ordered channel
// and one failure contract: a dead or hung peer fails the next message within the timeout.
//
// Order on the wire: one `setup` (the paged cache every rank allocates), then any number of `step`
// (a step_batch to run now) and `keepalive` (the leader is idle; it sends one at least every
// second so that a follower's wait never reaches the timeout and a dead follower is noticed), and
// finally `stop`.
#pragma once

#include <cstdint>

#include "common/expected.hpp"
#include "engine/parallel/communicator.hpp"
#include "engine/executor/step_batch.hpp"

namespace troupe::engine {

enum class group_message_kind : int32_t { setup = 1, step = 2, keepalive = 3, stop = 4 };

struct group_message {
  group_message_kind kind = group_message_kind::keepalive;
  int32_t num_blocks = 0;  // setup: blocks of the paged KV cache
  int32_t block_size = 0;  // setup: positions per block
  // setup: the leader's decode-graph width (llama_forward::set_graph_max_batch). Every rank pads a
  // decode step alike, so their all-reduces have the same sizes.
  int32_t graph_max_batch = 0;
  step_batch batch;        // step
};

// Rank 0: sends `m` to every rank (two broadcasts: a fixed header, then the batch's arrays).
[[nodiscard]] expected<void> send_group_message(parallel::communicator& comm, const group_message& m);

// Rank 0: a `step` message with `batch`, without copying it into a group_message.
[[nodiscard]] expected<void> send_group_step(parallel::communicator& comm, const step_batch& batch);

// Ranks > 0: the next message from rank 0. Errors: the communicator's (peer gone, timeout), or a
// header that is not ours or announces more than 64 MiB (a broken group, never an allocation).
[[nodiscard]] expected<group_message> receive_group_message(parallel::communicator& comm);

}  // namespace troupe::engine
