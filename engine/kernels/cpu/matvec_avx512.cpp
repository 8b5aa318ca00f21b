// AVX-512 path (with BF16 and VNNI): row dot products for decode and small batches, weight-row
// conversion for the GEMM packer, and the bandwidth / FMA probes. Compiled with -mavx512*.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <utility>

// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* helpers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "engine/kernels/cpu/avx512_math.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

// Software prefetch distance in bytes ahead of the row stream. The hardware prefetcher already
// follows the stream; an explicit lead keeps more lines in flight per core. Measured on the 1.1B
// model's matrices (2 GB, 2 threads): 2048 beat 512, 1024 and 4096.
constexpr int64_t prefetch_bytes = 2048;

template <class T>
const T* row_of(const weight_matrix& w, int64_t row) {
  return reinterpret_cast<const T*>(static_cast<const uint8_t*>(w.data) +
                                    size_t(row) * *row_bytes(w.type, w.cols));
}

inline void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T0); }

// Calls kernel.template run<1>(row, out) over [rb, re): one row at a time, so that each thread
// reads its rows as one sequential stream (x stays in L1). Measured faster than 2 or 4 interleaved
// rows sharing each load of x (about +15% on 2 GB of bf16 rows): memory streams, not loads of x,
// bound decode.
template <class Kernel>
void over_rows(const Kernel& kernel, int64_t rb, int64_t re, float* y) {
  for (int64_t r = rb; r < re; ++r) kernel.template run<1>(r, y + r);
}

struct f32_kernel {
  const weight_matrix& w;
  const float* x;
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t cols = w.cols;
    const float* p = row_of<float>(w, row);
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= cols; k += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const float* q = p + r * cols + k;
        prefetch(q + prefetch_bytes / 4);
        acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(q), x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(q + 16), x1, acc[r][1]);
      }
    }
    for (; k < cols; k += 16) {
      const __mmask16 m = cols - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - k)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
      for (int r = 0; r < R; ++r)
        acc[r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, p + r * cols + k), x0, acc[r][0]);
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
  }
};

struct f16_kernel {
  const weight_matrix& w;
  const float* x;
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t cols = w.cols;
    const uint16_t* p = row_of<uint16_t>(w, row);
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    int64_t k = 0;
    for (; k + 32 <= cols; k += 32) {
      const __m512 x0 = _mm512_loadu_ps(x + k), x1 = _mm512_loadu_ps(x + k + 16);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint16_t* q = p + r * cols + k;
        prefetch(q + prefetch_bytes / 2);
        const __m512i h = _mm512_loadu_si512(q);
        acc[r][0] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_castsi512_si256(h)), x0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(_mm512_cvtph_ps(_mm512_extracti64x4_epi64(h, 1)), x1, acc[r][1]);
      }
    }
    for (; k < cols; k += 16) {
      const __mmask16 m = cols - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (cols - k)) - 1);
      const __m512 x0 = _mm512_maskz_loadu_ps(m, x + k);
      for (int r = 0; r < R; ++r) {
        const __m512 wv = _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + r * cols + k));
        acc[r][0] = _mm512_fmadd_ps(wv, x0, acc[r][0]);
      }
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
  }
};

// bf16 weights times x rounded to bf16 (see activations::bf16): one vdpbf16ps per 32 weights,
// whose products are exact in f32.
struct bf16_kernel {
  const weight_matrix& w;
  const uint16_t* x;
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t cols = w.cols;
    const uint16_t* p = row_of<uint16_t>(w, row);
    // Two accumulator chains per row, so that vdpbf16ps's latency never stalls the stream.
    __m512 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    // Peel the head of a row that does not start on a cache line, so that every 64-byte load of
    // the main loop is aligned instead of touching two lines (about +15-25% measured).
    int64_t k = std::min<int64_t>(cols, int64_t((64 - (reinterpret_cast<uintptr_t>(p) & 63)) & 63) / 2);
    if (k > 0) {
      const __mmask32 m = __mmask32((uint64_t(1) << k) - 1);
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x);
      for (int r = 0; r < R; ++r)
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_maskz_loadu_epi16(m, p + r * cols), xv);
    }
    for (; k + 64 <= cols; k += 64) {
      const __m512bh x0 = (__m512bh)_mm512_loadu_si512(x + k), x1 = (__m512bh)_mm512_loadu_si512(x + k + 32);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const uint16_t* q = p + r * cols + k;
        prefetch(q + prefetch_bytes / 2);
        prefetch(q + prefetch_bytes / 2 + 32);
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_loadu_si512(q), x0);
        acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)_mm512_loadu_si512(q + 32), x1);
      }
    }
    for (; k < cols; k += 32) {
      const __mmask32 m = cols - k >= 32 ? ~__mmask32(0) : __mmask32((uint64_t(1) << (cols - k)) - 1);
      const __m512bh xv = (__m512bh)_mm512_maskz_loadu_epi16(m, x + k);
      for (int r = 0; r < R; ++r)
        acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_maskz_loadu_epi16(m, p + r * cols + k), xv);
    }
    for (int r = 0; r < R; ++r) out[r] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
  }
};

// Q8_0 rows stream with their own prefetch: to L2 (T1) and 6 KiB ahead. Measured on the 1.1B
// model's Q8_0 matrices (2 threads, alternating in one process against the kernel with the bf16
// kernels' 2 KiB into L1): +13-14%, where 4 KiB gave +9% and no software prefetch +7%.
constexpr int64_t q8_prefetch_bytes = 6144;

// Four weight blocks per step. vpdpbusd multiplies unsigned by signed bytes, so the weights are
// offset to unsigned (w ^ 0x80 == w + 128) and the accumulator starts at -128 * sum(x) of each
// 4-byte lane (precomputed in a.q8_corr). Unlike the abs/sign trick this is exact for w = -128.
// The four f16 block scales go through one 64-bit move and one conversion, times x's four scales,
// and each pair of blocks takes its two from there (+12% per step against two blocks per step).
struct q8_0_kernel {
  const weight_matrix& w;
  const int8_t* xq;
  const float* xs;      // per block
  const int32_t* xc;    // per 4 values
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t blocks = w.cols / q8_0_block;
    const block_q8_0* p = row_of<block_q8_0>(w, row);
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    // Lanes 0-7 take scale s, lanes 8-15 scale s + 1.
    const __m512i spread01 = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
    const __m512i spread23 = _mm512_set_epi32(3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 2, 2, 2, 2, 2);
    // Two FMA chains per row (one per pair of blocks), for the same reason as the bf16 kernel.
    __m512 acc[R], acc2[R];
    __m256 acc_tail[R];
    for (int r = 0; r < R; ++r) acc[r] = acc2[r] = _mm512_setzero_ps(), acc_tail[r] = _mm256_setzero_ps();
    const auto pair = [&](const block_q8_0* b, int64_t i) {  // blocks b[0], b[1] at block index i
      const __m512i wv = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[0].qs))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b[1].qs)), 1);
      return _mm512_cvtepi32_ps(
          _mm512_dpbusd_epi32(_mm512_loadu_si512(xc + i * 8), _mm512_xor_si512(wv, flip), _mm512_loadu_si512(xq + i * 32)));
    };
    int64_t i = 0;
    for (; i + 4 <= blocks; i += 4) {
      const __m128 xs4 = _mm_loadu_ps(xs + i);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const block_q8_0* b = p + r * blocks + i;
        _mm_prefetch(reinterpret_cast<const char*>(b) + q8_prefetch_bytes, _MM_HINT_T1);
        _mm_prefetch(reinterpret_cast<const char*>(b) + q8_prefetch_bytes + 64, _MM_HINT_T1);
        const uint64_t d4 = uint64_t(b[0].d) | (uint64_t(b[1].d) << 16) | (uint64_t(b[2].d) << 32) |
                            (uint64_t(b[3].d) << 48);
        const __m512 s = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(_mm_cvtsi64_si128(int64_t(d4))), xs4));
        acc[r] = _mm512_fmadd_ps(pair(b, i), _mm512_permutexvar_ps(spread01, s), acc[r]);
        acc2[r] = _mm512_fmadd_ps(pair(b + 2, i + 2), _mm512_permutexvar_ps(spread23, s), acc2[r]);
      }
    }
    if (i + 2 <= blocks) {
      const __m128 xs2 = _mm_castpd_ps(_mm_load_sd(reinterpret_cast<const double*>(xs + i)));
      for (int r = 0; r < R; ++r) {
        const block_q8_0* b = p + r * blocks + i;
        const __m128i dw = _mm_cvtsi32_si128(int(uint32_t(b[0].d) | (uint32_t(b[1].d) << 16)));
        const __m512 s = _mm512_castps128_ps512(_mm_mul_ps(_mm_cvtph_ps(dw), xs2));
        acc[r] = _mm512_fmadd_ps(pair(b, i), _mm512_permutexvar_ps(spread01, s), acc[r]);
      }
      i += 2;
    }
    for (int r = 0; r < R; ++r) acc[r] = _mm512_add_ps(acc[r], acc2[r]);
    if (i < blocks) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * 32));
      const __m256i cv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xc + i * 8));
      for (int r = 0; r < R; ++r) {
        const block_q8_0& b = p[r * blocks + i];
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
        const __m256i dot =
            _mm256_dpbusd_epi32(cv, _mm256_xor_si256(wv, _mm512_castsi512_si256(flip)), xv);
        const __m256 scale = _mm256_set1_ps(_cvtsh_ss(b.d) * xs[i]);
        acc_tail[r] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot), scale, acc_tail[r]);
      }
    }
    for (int r = 0; r < R; ++r) {
      const __m512 all = _mm512_add_ps(acc[r], _mm512_castps256_ps512(acc_tail[r]));
      out[r] = _mm512_reduce_add_ps(all);
    }
  }
};

// The sums of a, b, c and d, as the four lanes of the result.
inline __m128 sum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  // Halves added: 128-bit lanes [a, a, b, b] and [c, c, d, d] of partial sums.
  const __m512 ab = _mm512_add_ps(_mm512_shuffle_f32x4(a, b, 0x44), _mm512_shuffle_f32x4(a, b, 0xEE));
  const __m512 cd = _mm512_add_ps(_mm512_shuffle_f32x4(c, d, 0x44), _mm512_shuffle_f32x4(c, d, 0xEE));
  // Lane k holds four partial sums of the k-th of a, b, c, d.
  __m512 t = _mm512_add_ps(_mm512_shuffle_f32x4(ab, cd, 0x88), _mm512_shuffle_f32x4(ab, cd, 0xDD));
  t = _mm512_add_ps(t, _mm512_permute_ps(t, 0x4E));
  t = _mm512_add_ps(t, _mm512_permute_ps(t, 0xB1));
  return _mm512_castps512_ps128(_mm512_permutexvar_ps(_mm512_set_epi32(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 12, 8, 4, 0), t));
}

// R rows x T tokens of bf16 weights against x rounded to bf16: each 32-weight vector is loaded
// once for T tokens, each token's 32 values once for R rows, and one vdpbf16ps (32 exact products,
// twice the rate of f32 FMAs) advances each of the R x T sums. 24 accumulators + 4 x vectors + a
// weight vector: 29 of the 32 registers. On this machine 6 x 4 beat 8 x 3, 4 x 6 and 3 x 8.
template <int R, int T>
void bf16_block(const uint16_t* p, const uint16_t* x, int64_t cols, float* y, int64_t y_stride) {
  __m512 acc[R][T];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) acc[r][t] = _mm512_setzero_ps();
  // The main loop and the masked tail are written out: with one lambda for both, GCC kept the
  // accumulators in memory.
  int64_t k = 0;
  for (; k + 32 <= cols; k += 32) {
    __m512bh xv[T];
#pragma GCC unroll 8
    for (int t = 0; t < T; ++t) xv[t] = (__m512bh)_mm512_loadu_si512(x + t * cols + k);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_loadu_si512(p + r * cols + k);
#pragma GCC unroll 8
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
    }
  }
  if (k < cols) {
    const __mmask32 m = __mmask32((uint64_t(1) << (cols - k)) - 1);
    __m512bh xv[T];
    for (int t = 0; t < T; ++t) xv[t] = (__m512bh)_mm512_maskz_loadu_epi16(m, x + t * cols + k);
    for (int r = 0; r < R; ++r) {
      const __m512bh wv = (__m512bh)_mm512_maskz_loadu_epi16(m, p + r * cols + k);
      for (int t = 0; t < T; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], wv, xv[t]);
    }
  }
  // Four rows of one token at a time through sum4 (about half the shuffles of four separate
  // horizontal sums), then the rest one by one.
  for (int t = 0; t < T; ++t) {
    float* out = y + t * y_stride;
    int r = 0;
    for (; r + 4 <= R; r += 4) _mm_storeu_ps(out + r, sum4(acc[r][t], acc[r + 1][t], acc[r + 2][t], acc[r + 3][t]));
    for (; r < R; ++r) out[r] = _mm512_reduce_add_ps(acc[r][t]);
  }
}

// R rows against tokens [t0, t1): blocks of 4 tokens, then the tail.
template <int R>
void bf16_rows_block(const weight_matrix& w, const activations& a, int64_t r0, int64_t t0,
                     int64_t t1, float* y) {
  const uint16_t* p = row_of<uint16_t>(w, r0);
  const auto x = [&](int64_t t) { return a.bf16 + t * a.cols; };
  const auto out = [&](int64_t t) { return y + t * w.rows + r0; };
  int64_t t = t0;
  for (; t + 4 <= t1; t += 4) bf16_block<R, 4>(p, x(t), w.cols, out(t), w.rows);
  switch (t1 - t) {
    case 3: bf16_block<R, 3>(p, x(t), w.cols, out(t), w.rows); break;
    case 2: bf16_block<R, 2>(p, x(t), w.cols, out(t), w.rows); break;
    case 1: bf16_block<R, 1>(p, x(t), w.cols, out(t), w.rows); break;
    default: break;
  }
}

// R rows x TV x 16 tokens (token vectors v0 .. v0 + TV - 1) with the tokens in the lanes: per pair
// of columns, TV vectors of 16 tokens' x pairs (a.bf16_pairs) and, per row, one broadcast of its
// weight pair; each vdpbf16ps advances 16 tokens' sums, so no horizontal sums are needed and each
// weight is loaded once per TV vectors. R x TV <= 24 accumulators.
template <int R, int TV>
void bf16_lanes_block(const weight_matrix& w, const activations& a, int64_t r0, int64_t v0, float* y) {
  const uint16_t* p = row_of<uint16_t>(w, r0);
  const int64_t cols = w.cols, pairs = cols / 2, stride = a.pairs_stride;
  const uint32_t* xp = a.bf16_pairs + v0 * 16;
  __m512 acc[R][TV];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int t = 0; t < TV; ++t) acc[r][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < pairs; ++k) {
    __m512bh xv[TV];
#pragma GCC unroll 4
    for (int t = 0; t < TV; ++t) xv[t] = (__m512bh)_mm512_loadu_si512(xp + k * stride + t * 16);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      int32_t pair;
      std::memcpy(&pair, p + r * cols + 2 * k, sizeof(pair));
      const __m512bh wb = (__m512bh)_mm512_set1_epi32(pair);
#pragma GCC unroll 4
      for (int t = 0; t < TV; ++t) acc[r][t] = _mm512_dpbf16_ps(acc[r][t], xv[t], wb);
    }
  }
  // Each 16-token vector's R rows transposed in registers, so that every token's R sums go to y
  // with one contiguous store (a scatter per row and vector cost ~25% of the kernel here).
  const __mmask16 row_mask = __mmask16((1u << R) - 1);
#pragma GCC unroll 4
  for (int t = 0; t < TV; ++t) {
    __m512 v[16];
#pragma GCC unroll 16
    for (int r = 0; r < 16; ++r) v[r] = r < R ? acc[r][t] : _mm512_setzero_ps();
    transpose16(v);
    const int64_t t0 = (v0 + t) * 16, tokens = std::min<int64_t>(16, a.n - t0);
    for (int64_t j = 0; j < tokens; ++j) _mm512_mask_storeu_ps(y + (t0 + j) * w.rows + r0, row_mask, v[j]);
  }
}

// R rows against every token vector, in groups of up to 3 vectors (48 tokens, 24 accumulators);
// a remainder of 4 goes as 2 + 2 rather than 3 + 1 (one vector keeps only 8 chains in flight).
// The rows' weights stay in L1/L2 while the groups pass, so a many-token matmul reads them from
// memory once and needs no packing.
template <int R>
void bf16_lanes_rows_block(const weight_matrix& w, const activations& a, int64_t r0, float* y) {
  const int64_t vectors = a.pairs_stride / 16;
  int64_t v = 0;
  for (; vectors - v > 4 || vectors - v == 3; v += 3) bf16_lanes_block<R, 3>(w, a, r0, v, y);
  for (; vectors - v >= 2; v += 2) bf16_lanes_block<R, 2>(w, a, r0, v, y);
  if (v < vectors) bf16_lanes_block<R, 1>(w, a, r0, v, y);
}

// Rows [rb, re) in the tokens-in-lanes layout: 8 rows at a time, then one by one.
void bf16_lanes_rows(const weight_matrix& w, const activations& a, int64_t rb, int64_t re, float* y) {
  int64_t r = rb;
  for (; r + 8 <= re; r += 8) bf16_lanes_rows_block<8>(w, a, r, y);
  for (; r < re; ++r) bf16_lanes_rows_block<1>(w, a, r, y);
}

// Rows [rb, re) against every token. With the tokens-in-lanes layout prepared (16 tokens or more,
// even columns), bf16_lanes_rows. Otherwise 6 x 4 blocks of k-lanes: tokens go in panels of
// bf16_token_panel (whose x stays in L2), and within a panel each 6-row block (in L1) meets every
// token before the next block: on this machine that order beat streaming 48-192-row tiles past
// each token quad by ~10%, and splitting the 5632 columns of the down projection into blocks (so
// that a 6-row block fits in L1) did not help.
void rows_bf16_batch(const weight_matrix& w, const activations& a, int64_t rb, int64_t re, float* y) {
  if (a.bf16_pairs != nullptr) return bf16_lanes_rows(w, a, rb, re, y);
  for (int64_t t0 = 0; t0 < a.n; t0 += bf16_token_panel) {
    const int64_t t1 = std::min(a.n, t0 + bf16_token_panel);
    int64_t r = rb;
    for (; r + 6 <= re; r += 6) bf16_rows_block<6>(w, a, r, t0, t1, y);
    switch (re - r) {
      case 5: bf16_rows_block<5>(w, a, r, t0, t1, y); break;
      case 4: bf16_rows_block<4>(w, a, r, t0, t1, y); break;
      case 3: bf16_rows_block<3>(w, a, r, t0, t1, y); break;
      case 2: bf16_rows_block<2>(w, a, r, t0, t1, y); break;
      case 1: bf16_rows_block<1>(w, a, r, t0, t1, y); break;
      default: break;
    }
  }
}

// path_table::pair_bf16: 16 pair rows x 16 tokens at a time, transposed in registers.
void pair_bf16_avx512(const uint16_t* x, int64_t n, int64_t cols, int64_t k_begin, int64_t k_end,
                      int64_t stride, uint32_t* pairs) {
  for (int64_t k = k_begin; k < k_end; k += 16) {
    const int64_t kn = std::min<int64_t>(16, k_end - k);
    const __mmask16 m = __mmask16((1u << kn) - 1);
    for (int64_t t0 = 0; t0 < stride; t0 += 16) {
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = t0 + i < n ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi32(m, x + (t0 + i) * cols + 2 * k))
                          : _mm512_setzero_ps();
      transpose16(r);
      for (int64_t j = 0; j < kn; ++j) _mm512_storeu_ps(reinterpret_cast<float*>(pairs + (k + j) * stride + t0), r[j]);
    }
  }
}

// x rounded to bf16 (round to nearest even, NaN stays NaN), 32 values per instruction.
void round_bf16_avx512(const float* x, int64_t count, uint16_t* out) {
  int64_t i = 0;
  for (; i + 32 <= count; i += 32)
    _mm512_storeu_si512(out + i, (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(x + i + 16), _mm512_loadu_ps(x + i)));
  for (; i < count; ++i) out[i] = f32_to_bf16(x[i]);
}

// path_table::quantize_q8 on 16 lanes (quantize_block_q8), the corrections from the quants.
void quantize_q8_avx512(const float* x, int64_t blocks, int8_t* q, float* scale, int32_t* corr) {
  const __m128i ones = _mm_set1_epi8(1);
  for (int64_t b = 0; b < blocks; ++b) {
    __m128i q0, q1;
    scale[b] = quantize_block_q8(x + b * q8_0_block, q0, q1);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * q8_0_block), q0);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + b * q8_0_block + 16), q1);
    if (corr != nullptr) {
      // Sums of each 4 quants (ones x signed bytes), times -128.
      const __m128i s0 = _mm_dpbusd_epi32(_mm_setzero_si128(), ones, q0);
      const __m128i s1 = _mm_dpbusd_epi32(_mm_setzero_si128(), ones, q1);
      _mm_storeu_si128(reinterpret_cast<__m128i*>(corr + b * 8), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s0, 7)));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(corr + b * 8 + 4), _mm_sub_epi32(_mm_setzero_si128(), _mm_slli_epi32(s1, 7)));
    }
  }
}

void rows_f32(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  over_rows(f32_kernel{w, a.f32 + t * a.cols}, rb, re, y);
}

void rows_f16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  over_rows(f16_kernel{w, a.f32 + t * a.cols}, rb, re, y);
}

void rows_bf16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  over_rows(bf16_kernel{w, a.bf16 + t * a.cols}, rb, re, y);
}

void rows_q8_0(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  over_rows(q8_0_kernel{w, a.q8 + t * a.cols, a.q8_scale + t * (a.cols / q8_0_block),
                        a.q8_corr + t * (a.cols / 4)},
            rb, re, y);
}

void convert_avx512(const weight_matrix& w, int64_t row, int64_t k0, int64_t count, float* out) {
  int64_t k = 0;
  auto tail_mask = [&] {
    return count - k >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - k)) - 1);
  };
  switch (w.type) {
    case dtype::f32: {
      const float* p = row_of<float>(w, row) + k0;
      for (; k < count; k += 16) {
        const __mmask16 m = tail_mask();
        _mm512_mask_storeu_ps(out + k, m, _mm512_maskz_loadu_ps(m, p + k));
      }
      return;
    }
    case dtype::f16: {
      const uint16_t* p = row_of<uint16_t>(w, row) + k0;
      for (; k < count; k += 16) {
        const __mmask16 m = tail_mask();
        _mm512_mask_storeu_ps(out + k, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, p + k)));
      }
      return;
    }
    case dtype::bf16: {
      const uint16_t* p = row_of<uint16_t>(w, row) + k0;
      for (; k < count; k += 16) {
        const __mmask16 m = tail_mask();
        const __m512i v = _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p + k)), 16);
        _mm512_mask_storeu_ps(out + k, m, _mm512_castsi512_ps(v));
      }
      return;
    }
    case dtype::q8_0: {
      const block_q8_0* b = row_of<block_q8_0>(w, row) + k0 / q8_0_block;
      for (; k < count; k += 16) {
        const block_q8_0& blk = b[k / q8_0_block];
        const __mmask16 m = tail_mask();
        const __m128i q = _mm_maskz_loadu_epi8(m, blk.qs + k % q8_0_block);
        const __m512 v = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q));
        _mm512_mask_storeu_ps(out + k, m, _mm512_mul_ps(v, _mm512_set1_ps(_cvtsh_ss(blk.d))));
      }
      return;
    }
  }
}

void softmax_avx512(float* s, int64_t count) {
  auto mask = [count](int64_t i) {
    return count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
  };
  __m512 mx = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  // Masked loads throughout: the last vector must not read past `count` (it may cross into an
  // unmapped page; ASan caught the unmasked load here).
  for (int64_t i = 0; i < count; i += 16) mx = _mm512_mask_max_ps(mx, mask(i), mx, _mm512_maskz_loadu_ps(mask(i), s + i));
  const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx));
  __m512 sum = _mm512_setzero_ps();
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 k = mask(i);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + i), m));
    _mm512_mask_storeu_ps(s + i, k, e);
    sum = _mm512_mask_add_ps(sum, k, sum, e);
  }
  const __m512 inv = _mm512_set1_ps(1.0f / _mm512_reduce_add_ps(sum));
  for (int64_t i = 0; i < count; i += 16)
    _mm512_mask_storeu_ps(s + i, mask(i), _mm512_mul_ps(_mm512_maskz_loadu_ps(mask(i), s + i), inv));
}

// silu(g) * u = g * s * u with s = 1 / (1 + e^-g), from e = exp(-|g|) <= 1 so that the
// polynomial exp never overflows: s = 1 / (1 + e) for g >= 0 and e / (1 + e) for g < 0.
void silu_mul_avx512(const float* gate, const float* up, int64_t count, float* out) {
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 m = count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
    const __m512 g = _mm512_maskz_loadu_ps(m, gate + i);
    const __m512 e = exp_nonpositive(_mm512_sub_ps(_mm512_setzero_ps(), _mm512_abs_ps(g)));
    const __m512 inv = _mm512_div_ps(_mm512_set1_ps(1.f), _mm512_add_ps(_mm512_set1_ps(1.f), e));
    const __mmask16 negative = _mm512_cmp_ps_mask(g, _mm512_setzero_ps(), _CMP_LT_OQ);
    const __m512 s = _mm512_mask_mul_ps(inv, negative, inv, e);
    _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(g, s), _mm512_maskz_loadu_ps(m, up + i)));
  }
}

double read_avx512(const float* p, int64_t count) {
  __m512 s[8];
  for (auto& v : s) v = _mm512_setzero_ps();
  // The same prefetch lead as the matvec kernels, so the probe is the best read this core manages.
  for (int64_t i = 0; i + 128 <= count; i += 128)
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) {
      prefetch(p + i + 16 * j + prefetch_bytes / 4);
      s[j] = _mm512_add_ps(s[j], _mm512_load_ps(p + i + 16 * j));
    }
  __m512 t = s[0];
  for (int j = 1; j < 8; ++j) t = _mm512_add_ps(t, s[j]);
  return _mm512_reduce_add_ps(t);
}

// cpu::log_sum_exp: one pass for the max (and for NaN or +inf, which give NaN), one for the sum of
// exp(x - max) with exp_nonpositive, -inf lanes zeroed, in f32 lanes per 1,024 values added up in
// double (64 values per lane keeps the f32 sums within ~1e-6).
double log_sum_exp_avx512(const float* x, int64_t count) {
  const __m512 neg_inf = _mm512_set1_ps(-std::numeric_limits<float>::infinity());
  __m512 mx = neg_inf;
  __mmask16 bad = 0;
  for (int64_t i = 0; i < count; i += 16) {
    const __mmask16 k = count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
    const __m512 v = _mm512_mask_loadu_ps(neg_inf, k, x + i);
    bad |= _mm512_fpclass_ps_mask(v, 0x89);  // quiet NaN, +inf, signalling NaN
    mx = _mm512_max_ps(mx, v);
  }
  const float m = _mm512_reduce_max_ps(mx);
  if (bad != 0 || m == -std::numeric_limits<float>::infinity()) return std::numeric_limits<double>::quiet_NaN();
  const __m512 mv = _mm512_set1_ps(m);
  double sum = 0;
  for (int64_t c = 0; c < count; c += 1024) {
    __m512 part = _mm512_setzero_ps();
    for (int64_t i = c; i < std::min(count, c + 1024); i += 16) {
      const __mmask16 k = count - i >= 16 ? __mmask16(0xffff) : __mmask16((1u << (count - i)) - 1);
      const __m512 v = _mm512_mask_loadu_ps(neg_inf, k, x + i);
      const __mmask16 finite = _mm512_cmp_ps_mask(v, neg_inf, _CMP_NEQ_OQ);
      part = _mm512_add_ps(part, _mm512_maskz_mov_ps(finite, exp_nonpositive(_mm512_sub_ps(v, mv))));
    }
    sum += double(_mm512_reduce_add_ps(part));
  }
  return double(m) + std::log(sum);
}

// The peak probes' chains. Each chain starts from its own value and every chain passes through an
// empty asm each iteration: chains that start alike compute alike, and GCC merged them (until
// session 8 the probes ran 7 instructions per iteration while counting 12 and 16, which overstated
// both peaks, by 12/7 and 16/7).
float fma_chains_avx512(int64_t iterations) {
  const __m512 b = _mm512_set1_ps(0.9999f), c = _mm512_set1_ps(1e-4f);
  __m512 a[12];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) a[i] = _mm512_set1_ps(1.f + 0.01f * float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) a[i] = _mm512_fmadd_ps(a[i], b, c);
    asm volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]));
    asm volatile("" : "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]));
  }
  __m512 s = a[0];
#pragma GCC unroll 12
  for (int i = 1; i < 12; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

// 16 chains: vdpbf16ps has a longer latency than an FMA here (~6 cycles), so 12 chains reach only
// ~93% of its rate.
float bf16_dot_chains_avx512(int64_t iterations) {
  const __m512bh b = (__m512bh)_mm512_set1_epi16(0x3f7f), c = (__m512bh)_mm512_set1_epi16(0x3a83);
  __m512 a[16];
#pragma GCC unroll 16
  for (int i = 0; i < 16; ++i) a[i] = _mm512_set1_ps(1.f + 0.01f * float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) a[i] = _mm512_dpbf16_ps(a[i], b, c);
    asm volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]), "+v"(a[5]), "+v"(a[6]), "+v"(a[7]));
    asm volatile("" : "+v"(a[8]), "+v"(a[9]), "+v"(a[10]), "+v"(a[11]), "+v"(a[12]), "+v"(a[13]), "+v"(a[14]), "+v"(a[15]));
  }
  __m512 s = a[0];
#pragma GCC unroll 16
  for (int i = 1; i < 16; ++i) s = _mm512_add_ps(s, a[i]);
  return _mm512_reduce_add_ps(s);
}

}  // namespace

const path_table& avx512_table() {
  static const path_table table{
      {rows_f32, rows_f16, rows_bf16, rows_q8_0},
      rows_bf16_batch,
      round_bf16_avx512,
      pair_bf16_avx512,
      convert_avx512,
      quantize_q8_avx512,
      true,
      softmax_avx512,
      log_sum_exp_avx512,
      silu_mul_avx512,
      read_avx512,
      fma_chains_avx512,
      12 * 16 * 2,
      bf16_dot_chains_avx512,
      16 * 16 * 4,
  };
  return table;
}

}  // namespace troupe::engine::cpu::detail
