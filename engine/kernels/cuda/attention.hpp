// Host launchers for attention over the paged KV cache; kernels live in attention.cu.
//
// Cache layout (f32), as the CPU backend's: per layer, K is [num_blocks, block_size, kv_dim] and V
// the same, so a layer's K starts at `k` and its V at `v`. A batch names, per token, its sequence
// (token_seq) and position (pos); per sequence, its block table, stored back to back in `tables`
// with sequence s's blocks at tables[table_offsets[s] .. table_offsets[s+1]).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

#include "engine/kernels/attention_split.hpp"

namespace troupe::engine::cuda {

// Query tiles for prefill: runs of at most this many consecutive tokens of one sequence.
constexpr int64_t attention_tile_tokens = 64;

struct paged_batch_args {
  const int32_t* pos = nullptr;            // [n]
  const int32_t* token_seq = nullptr;      // [n]
  const int32_t* table_offsets = nullptr;  // [seqs + 1]
  const int32_t* tables = nullptr;
  const int32_t* tiles = nullptr;          // [n_tiles, 2]: first token, token count (<= attention_tile_tokens)
  int64_t n = 0;
  int64_t n_tiles = 0;                     // 0: no tiles given (one query per block)
  int64_t block_size = 0;
};

// Writes k, v [n, kv_dim] into each token's row of the cache.
[[nodiscard]] cudaError_t launch_write_paged_kv(float* k_cache, float* v_cache, const paged_batch_args& b,
                                                const float* k, const float* v, int64_t kv_dim, cudaStream_t stream);

// Whether launch_paged_attention takes its decode path (one query per block, split along the KV
// length) rather than the tiled prefill kernel: the caller sizes the scratch by it.
[[nodiscard]] inline bool is_decode_launch(const paged_batch_args& b, int64_t head_dim) {
  return !(b.n_tiles > 0 && b.n_tiles < b.n && head_dim <= 128);
}

// The decode path's grouped-query kernel (one block per KV head reads its K/V once for the whole
// group) serves groups of 2 to gqa_max_group query heads with head_dim <= 128; otherwise one block
// per query head.
constexpr int64_t gqa_max_group = 16;
[[nodiscard]] inline bool uses_gqa_decode(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  const int64_t group = n_kv_heads > 0 ? n_heads / n_kv_heads : 0;
  return group >= 2 && group <= gqa_max_group && head_dim <= 128;
}
// Blocks per token and split of the decode path (what decode_splits divides the device by).
[[nodiscard]] inline int64_t decode_blocks_per_token(int64_t n_heads, int64_t n_kv_heads, int64_t head_dim) {
  return uses_gqa_decode(n_heads, n_kv_heads, head_dim) ? n_kv_heads : n_heads;
}

// Floats of scratch the decode path needs with `splits` > 1: per (token, head, split), the split's
// unnormalized sum [head_dim], its maximum and its mass.
[[nodiscard]] inline int64_t decode_scratch_floats(int64_t n, int64_t n_heads, int64_t head_dim, int32_t splits) {
  return splits > 1 ? n * n_heads * splits * (head_dim + 2) : 0;
}

// Causal attention: out[t, h] = softmax(q[t, h] . K[0..pos[t]] / sqrt(head_dim)) V over token t's
// own sequence, query head h reading kv head h / (n_heads / n_kv_heads). head_dim: a multiple of
// 32, at most 256.
//  - Decode (every tile one token, or no tiles; is_decode_launch): one block per (token, head,
//    split), its warps taking turns over the positions and merging with the online-softmax rule;
//    or, for grouped-query attention (uses_gqa_decode), one block per (token, KV head, split) with
//    a warp per query head of the group, each chunk of K/V rows read once for the group. With
//    `splits` > 1 (decode_splits in attention_split.hpp: long contexts, few tokens) each (token,
//    head)'s positions are cut into that many ranges (split_of), each block writes its partial
//    softmax to `scratch` (decode_scratch_floats) and a second kernel merges them into `out`.
//  - Prefill (tiles of several tokens, head_dim <= 128): flash-style on tensor cores, one block per
//    (tile, head); each chunk of 32 keys and values is loaded into shared memory once (as bf16) for
//    every query of the tile; scores and the weighted values are bf16 WMMA products with f32
//    accumulation, the online softmax is f32. `splits` and `scratch` are not used.
[[nodiscard]] cudaError_t launch_paged_attention(const float* q, const float* k_cache, const float* v_cache,
                                                 const paged_batch_args& b, int64_t n_heads, int64_t n_kv_heads,
                                                 int64_t head_dim, int32_t splits, float* scratch, float* out,
                                                 cudaStream_t stream);

}  // namespace troupe::engine::cuda
