// What one engine step runs, in a form every rank of a shard group can run: the leader's scheduler
// plans it, the leader broadcasts it (step_broadcast.hpp), and leader and followers execute it on
// their own shard and their own paged KV cache through the same function, so the ranks cannot run
// different steps.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "common/expected.hpp"
#include "engine/backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/scheduler/step_plan.hpp"

namespace troupe::engine {

struct step_batch {
  std::vector<int32_t> copies;         // copy-on-write block copies before the step: [src, dst] pairs
  std::vector<int32_t> tokens;         // [n]
  std::vector<int32_t> pos;            // [n]
  std::vector<int32_t> token_seq;      // [n]: each token's sequence (index into the tables)
  std::vector<int32_t> table_offsets;  // [seqs + 1]: sequence s's blocks are tables[offsets[s] .. offsets[s+1])
  std::vector<int32_t> tables;         // every sequence's block ids, back to back

  // Appends one sequence's block table.
  void add_table(std::span<const int32_t> blocks);
  [[nodiscard]] size_t num_seqs() const { return table_offsets.empty() ? 0 : table_offsets.size() - 1; }
};

// The batch a scheduler plan runs: the copy-on-write copies, every scheduled sequence's tokens,
// positions and block table. `logit_rows` gets the last token of each sequence that samples.
[[nodiscard]] step_batch batch_of(const step_plan& plan, std::vector<int32_t>& logit_rows);

// Checks the batch's own consistency (lengths, offsets, copy pairs and block ids within
// `num_blocks`); forward_batch checks the rest (vocabulary, positions, table lengths). The errors
// name the field.
[[nodiscard]] expected<void> validate(const step_batch& b, int64_t num_blocks);

// The block copies, then one forward pass over the batch with the logits of `logit_rows` written
// to `logits` [logit_rows.size(), vocab]. A follower rank passes no rows: its logits are rank 0's.
[[nodiscard]] expected<void> run_step_batch(llama_forward& fwd, paged_kv& kv, const step_batch& b,
                                            std::span<const int32_t> logit_rows, std::span<float> logits);

// run_step_batch, with the logit rows sampled on the device (llama_forward::forward_batch_sampled):
// rows[i] samples logit row i (its penalty entries in `penalties`); its token id goes to ids[i].
[[nodiscard]] expected<void> run_step_batch_sampled(llama_forward& fwd, paged_kv& kv, const step_batch& b,
                                                    std::span<const int32_t> logit_rows,
                                                    std::span<const device_sampling> rows,
                                                    std::span<const penalty_entry> penalties, std::span<int32_t> ids);

}  // namespace troupe::engine
