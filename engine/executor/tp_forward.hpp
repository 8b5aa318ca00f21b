// A tensor-parallel rank's forward pass: its Megatron shard of a loaded model (shard_plan,
// shard_model) run by the ordinary llama_forward with the all-reduces after o and down.
#pragma once

#include <memory>

#include "common/expected.hpp"
#include "engine/backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/model/model.hpp"
#include "engine/parallel/communicator.hpp"

namespace troupe::engine {

// Rank comm.rank() of comm.size(): plans the rank's slices (make_shard_plan: the divisibility
// errors name the field, its value and tp), builds its shard (parallel::shard_model) and a
// llama_forward over it that all-reduces through `comm`. Every rank of the group then calls
// forward / forward_batch with the same inputs in the same order, and every rank gets the same
// logits (the output head is whole on every rank; rank 0 sampling is the caller's choice). The KV
// stores it makes hold only the rank's kv heads. `comm` must outlive the returned forward pass.
// With a group of one this is the whole model, same as llama_forward::create.
[[nodiscard]] expected<std::unique_ptr<llama_forward>> create_tp_forward(std::shared_ptr<const model> full,
                                                                         backend& be, int64_t max_tokens,
                                                                         parallel::communicator& comm);

}  // namespace troupe::engine
