// CPU kernels for the Llama-family forward pass: SIMD matmul over f32/f16/bf16/q8_0 weights
// (AVX-512 with BF16 and VNNI dot products when the CPU has them, AVX2 otherwise, scalar fallback),
// a GEMM for many-token matmuls (own AVX-512 kernel; OpenBLAS on the other paths), attention, and
// the element-wise ops. Activations are always f32.
// Shapes in comments are [rows, cols], row-major.
#pragma once

#include <cstdint>
#include <span>

#include "engine/model/dtype.hpp"
#include "engine/kernels/cpu/thread_pool.hpp"

namespace troupe::engine::cpu {

// A weight matrix [rows, cols] in its stored dtype; row r starts at data + r * row_bytes(type, cols).
struct weight_matrix {
  const void* data;
  dtype type;
  int64_t rows;
  int64_t cols;
};

// y[n, w.rows] = x[n, w.cols] * w^T (+ bias[w.rows] when non-null).
// n == 1 (decode) streams the weights once with SIMD dot products split over rows across the pool.
// On AVX-512, bf16 weights with 2-15 tokens run blocks of 6 rows x 4 tokens of vdpbf16ps, 16-127
// tokens (decode batches, short prefill chunks) blocks of 8 rows x up to 48 tokens with the tokens
// in the vector lanes, and from 128 tokens (prefill) a GEMM on bf16 panels with vdpbf16ps; q8_0
// weights from 4 tokens a GEMM on int8 panels with vpdpbusd; f32 and f16 weights from 16 tokens a
// GEMM on f32 panels (cblas_sgemm for every type on the AVX2/scalar paths); fewer tokens reuse
// tiles of weight rows from cache.
// Precision: f32 and f16 weights accumulate in f32 against f32 activations; bf16 weights multiply
// x rounded to bf16 (exact products, f32 sums; as llama.cpp and GPU engines do); q8_0 quantizes x
// to 8 bits per 32-block as llama.cpp does, on every path and route.
void matmul(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, const float* bias,
            float* y);

// One of several matmuls of the same x (a layer's q/k/v or gate/up projections).
struct matmul_target {
  const weight_matrix* w;
  const float* bias;  // [w->rows] or null
  float* y;           // [n, w->rows]
};

// The same as matmul(pool, x, n, *t.w, t.bias, t.y) for each target, in any order. For one token
// and weights of one type and width (a decode step's q/k/v and gate/up), x is prepared once and
// every target's rows are streamed in one parallel region: one barrier instead of one per matrix,
// and a small matrix (k, v) no longer leaves a thread idle at its end.
void matmul_many(thread_pool& pool, const float* x, int64_t n, std::span<const matmul_target> targets);

// out[cols] = row `row` of w converted to f32 (embedding lookup).
void dequantize_row(const weight_matrix& w, int64_t row, float* out);

// out[n, dim] = x / rms(x) * gamma, per row.
void rms_norm(const float* x, const float* gamma, int64_t n, int64_t dim, float eps, float* out);

// Rotary embedding in place on x[n, n_heads * head_dim] for token positions pos[n].
// inv_freq has head_dim/2 entries (already scaled, e.g. by llama3 rope scaling).
// interleaved == false: rotate pairs (i, i + head_dim/2) (HF "rotate_half", NeoX style);
// interleaved == true: rotate pairs (2i, 2i+1) (GGUF llama / Meta original style).
void rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, std::span<const int32_t> pos,
          std::span<const float> inv_freq, bool interleaved);

// out[i] = silu(gate[i]) * up[i] for i < count.
void silu_mul(const float* gate, const float* up, int64_t count, float* out);

// acc[i] += x[i] for i < count.
void add(float* acc, const float* x, int64_t count);

// log(sum_i exp(x[i])) of x (non-empty) as max + log(sum exp(x - max)), in double: the log-softmax
// normalizer of a row of logits. NaN when any value is NaN or +inf or every value is -inf (then
// there is no distribution); -inf values count as zero probability. Within ~1e-6 of the exact
// value (AVX-512: f32 exponentials and partial sums per 1,024 values, summed in double; other
// paths: f32 std::exp summed in double).
[[nodiscard]] double log_sum_exp(std::span<const float> x);

// Causal attention for one sequence with grouped-query heads.
// q[n, n_heads*head_dim] for tokens at positions pos[n] (ascending, pos[n-1] < kv_len);
// k, v: [kv_len, n_kv_heads*head_dim] rows (the cache, already holding these tokens' keys/values);
// token i attends to cache rows 0..pos[i]. out[n, n_heads*head_dim]. Scale 1/sqrt(head_dim).
void attention(thread_pool& pool, const float* q, int64_t n, std::span<const int32_t> pos,
               const float* k, const float* v, int64_t kv_len, int64_t n_heads, int64_t n_kv_heads,
               int64_t head_dim, float* out);

// Causal attention of a batch of query tokens from several sequences over a paged KV cache
// (vLLM style). Per layer the keys and values live in a pool of fixed-size blocks; position p of a
// sequence is row p % block_size of block table[p / block_size]. Token i attends to positions
// 0..pos[i] of sequence token_seq[i]. Scale 1/sqrt(head_dim); query head h reads kv head
// h / (n_heads / n_kv_heads). One pass over the keys with an online (flash-style) softmax in f32,
// so scratch is O(head_dim) per (token, head), never O(context). Parallel over (token, kv head);
// a kv-head group's query heads share every K/V row load.
// Nothing is validated at run time beyond debug asserts; callers guarantee the shapes, that
// n_heads % n_kv_heads == 0, that every token has pos / block_size < tables[token_seq].size()
// (no read past a table), and that every block id in the first pos / block_size + 1 entries is
// < num_blocks. Table entries past that are never read; blocks may be shared between sequences.
struct paged_attention_args {
  const float* q;    // [n_tokens, n_heads * head_dim]
  float* out;        // [n_tokens, n_heads * head_dim]
  int64_t n_tokens, n_heads, n_kv_heads, head_dim;
  const float* k_cache;  // [num_blocks, block_size, n_kv_heads * head_dim]
  const float* v_cache;  // same
  int64_t block_size;
  std::span<const int32_t> pos;        // [n_tokens]: the token's position in its sequence
  std::span<const int32_t> token_seq;  // [n_tokens]: index into `tables`
  std::span<const std::span<const int32_t>> tables;  // per sequence: its block ids
};
void paged_attention(thread_pool& pool, const paged_attention_args& a);

// Measures main-memory read bandwidth (GB/s) with all pool threads streaming vectorized loads over
// a buffer of `bytes` (>= 1 GiB to defeat the L3); takes the best of `reps` passes.
[[nodiscard]] double measure_memory_bandwidth(thread_pool& pool, size_t bytes = size_t(1) << 30,
                                              int reps = 5);

// Measures how fast all pool threads read the given memory (GB/s, best of `reps` passes) with the
// same loads as measure_memory_bandwidth: the bandwidth of the very pages a decode step streams
// (the weights), which on a virtual machine can differ from a fresh buffer's by 20% or more (see
// docs/PERFORMANCE.md). Each region is read from its first 64-byte boundary in whole 512-byte
// pieces; regions may be unaligned and of any size.
[[nodiscard]] double measure_read_bandwidth(thread_pool& pool,
                                            std::span<const std::span<const std::byte>> regions, int reps = 3);

// Measures the fp32 FMA peak (GFLOP/s, counting 2 flops per FMA) with independent FMA chains on
// every pool thread.
[[nodiscard]] double measure_fma_peak(thread_pool& pool);

// The same with vdpbf16ps (what bf16 weights run on, 4 flops per lane and instruction); 0 where
// the SIMD path has no bf16 dot product.
[[nodiscard]] double measure_bf16_dot_peak(thread_pool& pool);

// Names the SIMD path chosen at run time ("avx512-bf16-vnni", "avx2", "scalar").
[[nodiscard]] const char* simd_path();

}  // namespace troupe::engine::cpu
