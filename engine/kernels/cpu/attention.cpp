// Causal grouped-query attention over the KV cache. Few tokens (decode): on AVX-512 the paged
// attention kernel over the cache as one block; elsewhere per (token, kv head) two sgemm calls
// over the query heads sharing that kv head. Many tokens (prefill): per (head,
// 32-token block) two single-threaded sgemm calls around a masked softmax.
#include <cblas.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu {

namespace {

constexpr int64_t gemm_min_tokens = 16;
constexpr int64_t query_block = 32;


}  // namespace

void attention(thread_pool& pool, const float* q, int64_t n, std::span<const int32_t> pos,
               const float* k, const float* v, int64_t kv_len, int64_t n_heads, int64_t n_kv_heads,
               int64_t head_dim, float* out) {
  if (n <= 0) return;
  const int64_t group = n_heads / n_kv_heads;
  const int64_t q_stride = n_heads * head_dim;
  const int64_t kv_stride = n_kv_heads * head_dim;
  const float scale = float(1.0 / std::sqrt(double(head_dim)));
  const detail::path_table& simd = detail::table_for(detail::best_level());
  // Positions bound every read: pos[i] < kv_len is the caller's contract.

  static const bool blas_ready = [] {
    openblas_set_num_threads(1);  // the pool owns the cores
    return true;
  }();
  (void)blas_ready;

  if (n < gemm_min_tokens && detail::best_level() == detail::simd_level::avx512) {
    // Few tokens (decode) on AVX-512: the paged kernel, the cache being one block of kv_len rows
    // (its 16-key tiles beat two sgemm calls per kv head, whose packing dominated at these sizes).
    const int32_t block = 0;
    const std::span<const int32_t> table(&block, 1);
    static constexpr std::array<int32_t, gemm_min_tokens> one_sequence{};  // every token in sequence 0
    paged_attention(pool, {q, out, n, n_heads, n_kv_heads, head_dim, k, v, kv_len, pos,
                           std::span(one_sequence).first(size_t(n)), std::span(&table, 1)});
    return;
  }
  if (n < gemm_min_tokens) {
    // Few tokens (decode): per (token, kv head), the group's query heads form one small matrix,
    // S = Q_group K^T then O = P V as two sgemm calls. One call per group replaced a dot product
    // and an axpy call per (head, key), whose call overhead cost ~10 ms per token at 550 positions
    // on the 1.1B model (22 layers x 32 heads).
    pool.parallel_for(n * n_kv_heads, 1, [&](int, int64_t ib, int64_t ie) {
      thread_local std::vector<float> scores;
      for (int64_t item = ib; item < ie; ++item) {
        const int64_t t = item / n_kv_heads, g = item % n_kv_heads;
        const int64_t len = int64_t(pos[size_t(t)]) + 1;
        scores.resize(size_t(group * len));
        const float* qg = q + t * q_stride + g * group * head_dim;  // [group, head_dim]
        float* og = out + t * q_stride + g * group * head_dim;      // [group, head_dim]
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(group), int(len), int(head_dim), scale, qg,
                    int(head_dim), k + g * head_dim, int(kv_stride), 0.f, scores.data(), int(len));
        for (int64_t hh = 0; hh < group; ++hh) simd.softmax(scores.data() + hh * len, len);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(group), int(head_dim), int(len), 1.f,
                    scores.data(), int(len), v + g * head_dim, int(kv_stride), 0.f, og, int(head_dim));
      }
    });
    return;
  }

  // Prefill: S = Q_block K^T (scaled), causal-masked softmax per row, O = P V.
  const int64_t blocks = (n + query_block - 1) / query_block;
  pool.parallel_for(n_heads * blocks, 1, [&](int, int64_t ib, int64_t ie) {
    thread_local std::vector<float> s;
    for (int64_t item = ib; item < ie; ++item) {
      const int64_t h = item / blocks, b = item % blocks;
      const int64_t g = h / group;
      const int64_t t0 = b * query_block, mb = std::min(query_block, n - t0);
      const int64_t kv_end = int64_t(pos[size_t(t0 + mb - 1)]) + 1;
      s.resize(size_t(mb * kv_end));
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(mb), int(kv_end), int(head_dim), scale,
                  q + t0 * q_stride + h * head_dim, int(q_stride), k + g * head_dim, int(kv_stride),
                  0.f, s.data(), int(kv_end));
      for (int64_t i = 0; i < mb; ++i) {
        float* row = s.data() + i * kv_end;
        const int64_t len = int64_t(pos[size_t(t0 + i)]) + 1;
        simd.softmax(row, len);
        std::fill(row + len, row + kv_end, 0.f);
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(mb), int(head_dim), int(kv_end), 1.f,
                  s.data(), int(kv_end), v + g * head_dim, int(kv_stride), 0.f,
                  out + t0 * q_stride + h * head_dim, int(q_stride));
    }
  });
}

}  // namespace troupe::engine::cpu
