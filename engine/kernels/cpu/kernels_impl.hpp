// Internal interface between the kernel dispatcher and the per-instruction-set implementations
// (scalar, *_avx2.cpp, *_avx512.cpp). Tests include it to exercise every path the CPU supports.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "engine/kernels/cpu/kernels.hpp"

namespace troupe::engine::cpu::detail {

enum class simd_level { scalar, avx2, avx512 };

// The best level this CPU (and TROUPE_SIMD) allows; AVX-512 requires BF16 and VNNI as well.
[[nodiscard]] simd_level best_level();
[[nodiscard]] bool level_supported(simd_level level);

// Activations of one matmul call, converted once into what each path's dot products read.
// Only the members the weight type and path need are set.
//
// bf16 weights multiply x rounded to bf16 (round to nearest even) on every path, with exact
// products and f32 sums: what vdpbf16ps computes, what llama.cpp does for bf16 weights and what
// GPU engines do with bf16 activations. It keeps ~8 bits of each x and runs the batch and prefill
// matmuls at twice the rate of f32 FMAs. The AVX-512 path reads the bf16 values (a.bf16); the
// others read them widened back to f32 (a.f32), so every path computes the same products.
struct activations {
  int64_t n = 0;
  int64_t cols = 0;
  const float* f32 = nullptr;       // [n, cols], the caller's x (bf16 weights: x rounded to bf16)
  const uint16_t* bf16 = nullptr;   // [n, cols] bf16(x) (AVX-512, bf16 weights)
  // [cols / 2, pairs_stride] the same values as pairs along k, token-major within a pair row,
  // zero past n (AVX-512, bf16 weights, n >= bf16_lanes_min_n, even cols): the batch kernel's
  // tokens-in-lanes layout. pairs_stride is n rounded up to 16.
  const uint32_t* bf16_pairs = nullptr;
  int64_t pairs_stride = 0;
  const int8_t* q8 = nullptr;       // [n, cols] x quantized per 32-block (q8_0 weights)
  const float* q8_scale = nullptr;  // [n, cols / 32]
  const int32_t* q8_corr = nullptr; // [n, cols / 4] -128 * sum of each 4 q8 values (AVX-512)
};

// y[r] (r in [row_begin, row_end)) = dot(row r of w, token `token` of a).
using rows_fn = void (*)(const weight_matrix& w, const activations& a, int64_t token,
                         int64_t row_begin, int64_t row_end, float* y);

// out[0, count) = elements [k0, k0 + count) of row `row` of w as f32 (q8_0: k0, count % 32 == 0
// unless the segment ends the row).
using convert_fn = void (*)(const weight_matrix& w, int64_t row, int64_t k0, int64_t count,
                            float* out);

// y[t * w.rows + r] for every token t of a and r in [row_begin, row_end): a few tokens at once.
using batch_rows_fn = void (*)(const weight_matrix& w, const activations& a, int64_t row_begin,
                               int64_t row_end, float* y);

struct path_table {
  rows_fn rows[4];  // indexed by dtype
  // bf16 weights times 2 or more tokens (decode batches: matmul sends up to bf16_gemm_min_n - 1),
  // each weight vector loaded once for several tokens; reads a.bf16. Null where the path has none.
  batch_rows_fn bf16_batch;
  // out[i] = bf16(x[i]), round to nearest even. Non-null where bf16 rows read a.bf16.
  void (*round_bf16)(const float* x, int64_t count, uint16_t* out);
  // The tokens-in-lanes layout (activations::bf16_pairs) of x [n, cols] in bf16, pair rows
  // [k_begin, k_end): pairs[k * stride + t] = columns 2k (low half) and 2k + 1 of token t, zero for
  // tokens n .. stride - 1. Null where bf16_batch does not read it.
  void (*pair_bf16)(const uint16_t* x, int64_t n, int64_t cols, int64_t k_begin, int64_t k_end,
                    int64_t stride, uint32_t* pairs);
  convert_fn convert;
  // x[blocks * 32] quantized per 32-block for q8_0 weights: scale[b] = amax / 127 and
  // q = nearbyint(x * (1 / scale)) in [-127, 127] (llama.cpp's q8_0 activations, f32 scale);
  // corr[i] = -128 * (sum of quants 4i .. 4i + 3) where the path reads it (needs_q8_corr).
  // Every path computes the same values (quantize_q8_portable's arithmetic).
  void (*quantize_q8)(const float* x, int64_t blocks, int8_t* q, float* scale, int32_t* corr);
  bool needs_q8_corr;
  void (*softmax)(float* s, int64_t count);  // in place: exp(s - max(s)) / sum; count >= 1
  double (*log_sum_exp)(const float* x, int64_t count);  // cpu::log_sum_exp; count >= 1
  // out[i] = silu(gate[i]) * up[i] (out may be gate).
  void (*silu_mul)(const float* gate, const float* up, int64_t count, float* out);
  double (*read_stream)(const float* p, int64_t count);  // bandwidth probe: sums the floats
  float (*fma_chains)(int64_t iterations);  // peak probe; returns a sink value
  int fma_flops_per_iteration;
  // The same with vdpbf16ps (2 products and 2 sums per lane); null where the path has none.
  float (*bf16_dot_chains)(int64_t iterations);
  int bf16_dot_flops_per_iteration;
};

// The portable q8 quantization (see path_table::quantize_q8), compiled into the scalar and AVX2
// paths (the latter inlines the rounding); corr may be null.
inline void quantize_q8_portable(const float* x, int64_t blocks, int8_t* q, float* scale, int32_t* corr) {
  for (int64_t b = 0; b < blocks; ++b) {
    const float* v = x + b * q8_0_block;
    float amax = 0;
    for (int j = 0; j < q8_0_block; ++j) amax = std::max(amax, std::fabs(v[j]));
    const float d = amax / 127.f;
    const float inv = d > 0 ? 1.f / d : 0.f;
    scale[b] = d;
    for (int j = 0; j < q8_0_block; ++j) q[b * q8_0_block + j] = int8_t(std::nearbyint(v[j] * inv));
    if (corr != nullptr)
      for (int j = 0; j < q8_0_block / 4; ++j) {
        const int8_t* w = q + b * q8_0_block + 4 * j;
        corr[b * (q8_0_block / 4) + j] = -128 * (int32_t(w[0]) + w[1] + w[2] + w[3]);
      }
  }
}

// The portable softmax, log-sum-exp and SwiGLU gate, also used by the AVX2 path.
void softmax_scalar(float* s, int64_t count);
double log_sum_exp_scalar(const float* x, int64_t count);
void silu_mul_scalar(const float* gate, const float* up, int64_t count, float* out);

[[nodiscard]] const path_table& scalar_table();
[[nodiscard]] const path_table& avx2_table();
[[nodiscard]] const path_table& avx512_table();
[[nodiscard]] const path_table& table_for(simd_level level);

// Large-n matmul on AVX-512: packs weight panels (bf16 pairs for bf16 weights, unsigned int8 with
// block scales for q8_0, f32 for the rest) and runs a register-blocked micro-kernel (vdpbf16ps,
// vpdpbusd or FMAs; gemm_avx512.cpp). x is rounded or quantized as `activations` describes.
// y[n, w.rows], no bias.
void gemm_avx512(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, float* y);

// matmul on an explicit path; `gemm_min_n` is the token count from which the GEMM path is used.
void matmul_on(simd_level level, thread_pool& pool, const float* x, int64_t n,
               const weight_matrix& w, const float* bias, float* y, int64_t gemm_min_n);

// The token count from which matmul switches from row dot products to GEMM.
inline constexpr int64_t default_gemm_min_n = 16;
// The same for bf16 weights on AVX-512, from the batch kernel (tokens in the lanes from 16 tokens)
// to the bf16 GEMM. Session 8, 22 layers of TinyLlama's matrices (2 GB, cold), 2 threads: the batch
// kernel ran 587 / 570 / 574 / 522 GFLOP/s at 64 / 96 / 128 / 256 tokens against 490 / 549 / 560 /
// 595 for the GEMM (which packs every weight block it reads).
inline constexpr int64_t bf16_gemm_min_n = 128;
// The same for q8_0 weights on AVX-512 (the GEMM's int8 format): on 5632 x 2048 the row kernels
// ran ~120-150 GFLOP/s at 2-15 tokens, the GEMM ~80-100 at 2, ~160-200 at 4, ~250-290 at 8 and
// ~370-490 at 16.
inline constexpr int64_t q8_gemm_min_n = 4;
// path_table::bf16_batch takes tokens in panels of this many below bf16_lanes_min_n tokens (it
// runs up to bf16_gemm_min_n - 1 tokens from matmul, any number from matmul_on): 64 tokens of a
// 2048-column x are 256 KiB, which stay in L2 beside the rows being read.
inline constexpr int64_t bf16_token_panel = 64;
// From this many tokens (and with an even column count) the batch kernel puts tokens in the
// vector lanes instead of columns (see rows_bf16_batch): on 5632 x 2048 it ran ~420-440 against
// ~390 GFLOP/s at 16 tokens, ~600 against ~390 at 32 and ~605 against ~410 at 48; at 8 tokens
// ~220 against ~320.
inline constexpr int64_t bf16_lanes_min_n = 16;

// Paged attention on an explicit path (the public paged_attention uses best_level()).
void paged_attention_on(simd_level level, thread_pool& pool, const paged_attention_args& a);

// One paged-attention work item: token `token`, kv heads [kv_begin, kv_end), all their query
// heads. scratch holds paged_attention_scratch(group * (kv_end - kv_begin), head_dim) floats
// (group = n_heads / n_kv_heads). One per path (paged_attention*.cpp; the scalar and AVX2 ones
// from paged_attention_impl.hpp, one kv head at a time).
inline constexpr int64_t paged_attention_tile = 32;  // keys scored per online-softmax step
[[nodiscard]] inline constexpr int64_t paged_attention_scratch(int64_t group, int64_t head_dim) {
  return group * (2 * head_dim + 3 + paged_attention_tile);
}
using paged_attention_item_fn = void (*)(const paged_attention_args& a, int64_t token,
                                         int64_t kv_begin, int64_t kv_end, float* scratch);
void paged_attention_item_scalar(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                                 int64_t kv_end, float* scratch);
void paged_attention_item_avx2(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                               int64_t kv_end, float* scratch);
void paged_attention_item_avx512(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                                 int64_t kv_end, float* scratch);

}  // namespace troupe::engine::cpu::detail
