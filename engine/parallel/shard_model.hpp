// One rank's tensor-parallel shard of a loaded model: the same model type, with the config of the
// shard and views (rows) or copies (columns) of its slices of the attention and FFN weights.
#pragma once

#include <memory>

#include "common/expected.hpp"
#include "engine/model/model.hpp"
#include "engine/parallel/shard_plan.hpp"

namespace troupe::engine::parallel {

// The model rank `plan.rank` of `plan.tp` runs: config = shard_config(full.config, plan), and per
// layer
//  - wq, wk, wv, w_gate, w_up (and the Qwen2 biases bq, bk, bv): the plan's rows, as views into
//    the full model's mapped file (rows of an [out, in] row-major matrix are contiguous: no copy);
//  - wo, w_down: the plan's columns, copied into a buffer the shard owns ([dim, cols] row-major),
//    because a column block is not contiguous in the file;
//  - attn_norm, ffn_norm: whole.
// Embeddings, the final norm and the output head stay whole on every rank (every rank can compute
// the logits). The shard keeps `full` alive (its mappings back the row views). With tp = 1 the
// shard is the full model's weights under the same config.
// Errors: a column slice of a block-quantized matrix (q8_0) that does not start and end on a block
// boundary, naming the tensor.
[[nodiscard]] expected<std::shared_ptr<const model>> shard_model(std::shared_ptr<const model> full,
                                                                 const shard_plan& plan);

}  // namespace troupe::engine::parallel
