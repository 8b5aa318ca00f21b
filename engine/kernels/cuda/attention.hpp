// Host launchers for attention over the paged KV cache; kernels live in attention.cu.
//
// Cache layout (f32), as the CPU backend's: per layer, K is [num_blocks, block_size, kv_dim] and V
// the same, so a layer's K starts at `k` and its V at `v`. A batch names, per token, its sequence
// (token_seq) and position (pos); per sequence, its block table, stored back to back in `tables`
// with sequence s's blocks at tables[table_offsets[s] .. table_offsets[s+1]).
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace troupe::engine::cuda {

// Query tiles for prefill: runs of at most this many consecutive tokens of one sequence.
constexpr int64_t attention_tile_tokens = 16;

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

// Causal attention: out[t, h] = softmax(q[t, h] . K[0..pos[t]] / sqrt(head_dim)) V over token t's
// own sequence, query head h reading kv head h / (n_heads / n_kv_heads). head_dim: a multiple of
// 32, at most 256.
//  - Decode (every tile one token, or no tiles): one block per (token, head); its warps split the
//    positions and merge with the online-softmax rule, so one block streams a long context.
//  - Prefill (tiles of several tokens, head_dim <= 128): flash-style, one block per (tile, head);
//    each chunk of 32 keys and values is loaded into shared memory once and used by every query of
//    the tile, each query keeping its own online softmax.
[[nodiscard]] cudaError_t launch_paged_attention(const float* q, const float* k_cache, const float* v_cache,
                                                 const paged_batch_args& b, int64_t n_heads, int64_t n_kv_heads,
                                                 int64_t head_dim, float* out, cudaStream_t stream);

}  // namespace troupe::engine::cuda
