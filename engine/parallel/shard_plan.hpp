// Megatron-style tensor-parallel sharding of a Llama-family layer, computed once from the model
// config and (rank, tp): which heads, weight rows and weight columns each rank holds.
#pragma once

#include <cstdint>

#include "common/expected.hpp"
#include "engine/model/model_config.hpp"

namespace troupe::engine::parallel {

// A half-open range [begin, end) of indices (heads, rows or columns).
struct index_range {
  int64_t begin = 0;
  int64_t end = 0;
  [[nodiscard]] int64_t size() const { return end - begin; }
  bool operator==(const index_range&) const = default;
};

// One rank's share of every layer. Weights are [out, in] row-major, as the model files store them.
//  - Column-parallel (q, k, v, gate, up): the rank holds a slice of rows (output features) and
//    computes its slice of the output from the full input; q/k/v biases (Qwen2) are sliced with
//    their rows. Slices are whole heads, so the per-head row permutation of GGUF files
//    (rope_interleaved) stays inside a slice.
//  - Row-parallel (o, down): the rank holds a slice of columns (input features), the same slice
//    its column-parallel output produced, and computes a partial sum of the full output that an
//    all-reduce completes. Any bias of these would be added once, after the all-reduce.
//  - Everything else (embeddings, norms, the output head) is held whole by every rank here.
// Grouped-query attention: when n_kv_heads >= tp, each rank holds n_kv_heads / tp kv heads; when
// n_kv_heads < tp, KV heads are replicated: each rank holds the one kv head its q heads use, shared
// with the tp / n_kv_heads - 1 neighbouring ranks. Either way a rank's q heads use only its own kv
// heads, so attention needs no communication.
struct shard_plan {
  int rank = 0;
  int tp = 1;
  index_range q_heads;           // global q head indices
  index_range kv_heads;          // global kv head indices
  bool kv_replicated = false;    // n_kv_heads < tp
  index_range q_rows;            // of wq [q_dim, dim] and bq
  index_range k_rows;            // of wk [kv_dim, dim] and bk
  index_range v_rows;            // of wv [kv_dim, dim] and bv
  index_range gate_rows;         // of w_gate [ffn_dim, dim]
  index_range up_rows;           // of w_up [ffn_dim, dim]
  index_range o_cols;            // of wo [dim, q_dim]; equals q_rows
  index_range down_cols;         // of w_down [dim, ffn_dim]; equals gate_rows
};

// The plan for `rank` of `tp`. Checks tp >= 1, 0 <= rank < tp, num_attention_heads % tp == 0,
// tp % num_key_value_heads == 0 or num_key_value_heads % tp == 0, and intermediate_size % tp == 0;
// an error names the field (by its Hugging Face name), its value and tp. Pure: no I/O.
[[nodiscard]] expected<shard_plan> make_shard_plan(const model_config& config, int rank, int tp);

// The config a rank's shard looks like on its own: n_heads, n_kv_heads and ffn_dim of the shard,
// everything else unchanged (dim, head_dim, rope, vocab). The per-rank attention and FFN run as
// for this smaller model; the o and down outputs are then all-reduced.
[[nodiscard]] model_config shard_config(const model_config& config, const shard_plan& plan);

}  // namespace troupe::engine::parallel
