// How an engine's planned steps are run: on this process's forward pass alone, or on a shard group
// whose rank 0 this is (each step broadcast to the ranks first, step_broadcast.hpp, and run on
// every rank's shard). llm_engine plans and samples; an executor only runs. The same executors serve
// the cluster (gpu_actor/worker.cpp) and `troupe generate --tp`.
//
// Threading: the engine's thread (the step loop) owns its executor.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/expected.hpp"
#include "engine/executor/step_batch.hpp"
#include "engine/llama_forward.hpp"
#include "engine/parallel/communicator.hpp"

namespace troupe::engine {

class step_executor {
 public:
  virtual ~step_executor() = default;

  // The paged KV cache of `num_blocks` blocks, made once before any step (a group's ranks make
  // theirs of the same size: each rank's blocks hold only its own kv heads).
  [[nodiscard]] virtual expected<std::unique_ptr<paged_kv>> setup(int64_t num_blocks, int32_t block_size) = 0;

  // One step (run_step_batch): the logits of `logit_rows` into `logits` [rows, vocab].
  [[nodiscard]] virtual expected<void> run(paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                                           std::span<float> logits) = 0;
  // One step sampled on the device (run_step_batch_sampled): row i's token id into ids[i].
  [[nodiscard]] virtual expected<void> run_sampled(paged_kv& kv, const step_batch& b,
                                                   std::span<const int32_t> logit_rows,
                                                   std::span<const device_sampling> rows,
                                                   std::span<const penalty_entry> penalties,
                                                   std::span<int32_t> ids) = 0;

  // Called at least every second while the engine is idle, so that a group's ranks stay within
  // their timeout and a dead rank is noticed. Local: nothing to do.
  [[nodiscard]] virtual expected<void> keep_alive() = 0;

  // Why the group failed (a rank died or hung, or a step failed on some rank), once it has; every
  // later call fails with it, and the group must be torn down. Local: always empty.
  [[nodiscard]] virtual const std::optional<std::string>& failure() const = 0;
};

// Runs the steps on `fwd` alone. `fwd` must outlive the executor.
[[nodiscard]] std::unique_ptr<step_executor> make_local_executor(llama_forward& fwd);

// Rank 0 of the shard group `group` (its ranks run run_follower): broadcasts setup, each step and
// keepalives; sends stop when destroyed (bounded by the communicator's timeout). `fwd` is rank 0's
// shard over `group`'s all-reduces; both must outlive the executor. A group of one is local.
// Errors: `group` is not rank 0.
[[nodiscard]] expected<std::unique_ptr<step_executor>> make_group_executor(llama_forward& fwd,
                                                                           parallel::communicator& group);

}  // namespace troupe::engine
