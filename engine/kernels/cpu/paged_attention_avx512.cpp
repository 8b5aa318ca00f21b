// The paged-attention work item on AVX-512, written with intrinsics for head_dim = 16..128 in
// steps of 16 (other head sizes take the auto-vectorized item of paged_attention_impl.hpp).
//
// Per tile of up to 16 keys of one block:
// - scores: each 16-column slice of the tile's K rows is transposed in registers (16 x 16), so
//   that one FMA with a broadcast query element advances 16 keys' dot products at once; a slice
//   is loaded and transposed once for all the group's query heads, and no dot product needs a
//   horizontal sum (those sums were the auto-vectorized item's main cost);
// - the online softmax of each head runs on its 16 scores as one vector;
// - P V: accumulators of up to 16 vectors stay in registers (4 heads x 64 columns, or 2 x 128)
//   while the tile's V rows stream past.
#include <immintrin.h>

#include <algorithm>
#include <cassert>
#include <cmath>
#include <limits>

// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* helpers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include "engine/kernels/cpu/avx512_math.hpp"
#include "engine/kernels/cpu/paged_attention_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

constexpr int64_t keys_per_tile = 16;

// s[h] (+)= kt . q[h][0..16) for NH heads: two FMA chains per head, so that 4 heads keep 8
// chains in flight.
template <int NH>
inline void score_heads(const __m512 kt[16], const float* q, int64_t hd, float* s, bool first) {
  __m512 a0[NH], a1[NH];
  for (int h = 0; h < NH; ++h) {
    a0[h] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(s + h * keys_per_tile);
    a1[h] = _mm512_setzero_ps();
  }
  for (int e = 0; e < 16; e += 2)
    for (int h = 0; h < NH; ++h) {
      a0[h] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * hd + e]), kt[e], a0[h]);
      a1[h] = _mm512_fmadd_ps(_mm512_set1_ps(q[h * hd + e + 1]), kt[e + 1], a1[h]);
    }
  for (int h = 0; h < NH; ++h) _mm512_storeu_ps(s + h * keys_per_tile, _mm512_add_ps(a0[h], a1[h]));
}

// acc[h] = acc[h] * alpha[h] + sum over the tile's rows of p[h][r] * v[r], for NH heads of HV
// vectors each, kept in registers over the rows.
template <int HV, int NH>
inline void pv_heads(const float* vb, int64_t kv_stride, int64_t rows, const float* p,
                     const float* alpha, float* acc) {
  constexpr int64_t hd = HV * 16;
  __m512 a[NH][HV];
  for (int h = 0; h < NH; ++h) {
    const __m512 al = _mm512_set1_ps(alpha[h]);
    for (int c = 0; c < HV; ++c) a[h][c] = _mm512_mul_ps(_mm512_loadu_ps(acc + h * hd + c * 16), al);
  }
  for (int64_t r = 0; r < rows; ++r) {
    __m512 v[HV];
    for (int c = 0; c < HV; ++c) v[c] = _mm512_loadu_ps(vb + r * kv_stride + c * 16);
    for (int h = 0; h < NH; ++h) {
      const __m512 pr = _mm512_set1_ps(p[h * keys_per_tile + r]);
      for (int c = 0; c < HV; ++c) a[h][c] = _mm512_fmadd_ps(pr, v[c], a[h][c]);
    }
  }
  for (int h = 0; h < NH; ++h)
    for (int c = 0; c < HV; ++c) _mm512_storeu_ps(acc + h * hd + c * 16, a[h][c]);
}

// The item for head_dim = HV * 16 and kv heads [g0, g1). Scratch, per query head of the range:
// q [hd] (scaled), acc [hd], m, l, alpha, and s [16] (scores, then probabilities). With the whole
// row of kv heads, each tile's K and V rows are read whole (kv_stride contiguous floats), which
// the prefetchers follow better than one head's slice of each row.
template <int HV>
void item(const paged_attention_args& a, int64_t t, int64_t g0, int64_t g1, float* scratch) {
  constexpr int64_t hd = HV * 16;
  constexpr int heads_per_pv = std::max(1, 16 / HV);
  const int64_t group = a.n_heads / a.n_kv_heads, bs = a.block_size;
  const int64_t q_stride = a.n_heads * hd, kv_stride = a.n_kv_heads * hd;
  const int64_t nh = (g1 - g0) * group;  // query heads of the range
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t len = int64_t(a.pos[size_t(t)]) + 1;
  const std::span<const int32_t> table = a.tables[size_t(a.token_seq[size_t(t)])];
  assert(len >= 1 && (len - 1) / bs < int64_t(table.size()));

  float* q = scratch;
  float* acc = q + nh * hd;
  float* m = acc + nh * hd;
  float* l = m + nh;
  float* alpha = l + nh;
  float* s = alpha + nh;
  const float* qg = a.q + t * q_stride + g0 * group * hd;
  for (int64_t i = 0; i < nh * hd; ++i) q[i] = qg[i] * scale, acc[i] = 0.f;
  for (int64_t h = 0; h < nh; ++h) m[h] = -std::numeric_limits<float>::infinity(), l[h] = 0.f;

  for (int64_t p0 = 0; p0 < len;) {
    const int64_t row0 = p0 % bs;
    const int64_t rows = std::min({keys_per_tile, bs - row0, len - p0});
    const int64_t base = (int64_t(table[size_t(p0 / bs)]) * bs + row0) * kv_stride + g0 * hd;
    // The next tile, prefetched row by row while this one is computed: a token's rows are
    // kv_stride apart and its tiles in blocks anywhere in the pool.
    const int64_t n0 = p0 + rows;
    if (n0 < len) {
      const int64_t next_rows = std::min({keys_per_tile, bs - n0 % bs, len - n0});
      const int64_t next_base = (int64_t(table[size_t(n0 / bs)]) * bs + n0 % bs) * kv_stride + g0 * hd;
      for (int64_t r = 0; r < next_rows; ++r)
        for (int64_t e = 0; e < (g1 - g0) * hd; e += 16) {
          _mm_prefetch(reinterpret_cast<const char*>(a.k_cache + next_base + r * kv_stride + e), _MM_HINT_T0);
          _mm_prefetch(reinterpret_cast<const char*>(a.v_cache + next_base + r * kv_stride + e), _MM_HINT_T0);
        }
    }
    const __mmask16 valid = __mmask16((1u << rows) - 1);
    for (int64_t g = 0; g < g1 - g0; ++g) {
      const float* kb = a.k_cache + base + g * hd;
      const float* vb = a.v_cache + base + g * hd;
      float* const qh = q + g * group * hd;
      float* const sh = s + g * group * keys_per_tile;
      float* const mh = m + g * group;
      float* const lh = l + g * group;
      float* const ah = alpha + g * group;
      float* const acch = acc + g * group * hd;

      // Scores [group, 16]: rows past `rows` are zero here and masked out below.
      for (int c = 0; c < HV; ++c) {
        __m512 kt[16];
        for (int64_t r = 0; r < 16; ++r)
          kt[r] = r < rows ? _mm512_loadu_ps(kb + r * kv_stride + c * 16) : _mm512_setzero_ps();
        transpose16(kt);
        int64_t h = 0;
        for (; h + 4 <= group; h += 4) score_heads<4>(kt, qh + h * hd + c * 16, hd, sh + h * keys_per_tile, c == 0);
        for (; h < group; ++h) score_heads<1>(kt, qh + h * hd + c * 16, hd, sh + h * keys_per_tile, c == 0);
      }

      // Online softmax of the group's heads on their 16 scores, 16 heads at a time with the heads
      // in the lanes: the running maxima, rescale factors and sums are vectors, so no head waits on
      // a scalar exp (a libm call, which also spilled every live vector register) and the heads'
      // reductions overlap.
      for (int64_t h0 = 0; h0 < group; h0 += 16) {
        const int64_t hn = std::min<int64_t>(16, group - h0);
        const __mmask16 lanes = __mmask16((1u << hn) - 1);
        alignas(64) float tile_max[16] = {}, tile_sum[16] = {};
        __m512 sv[16];
        for (int64_t h = 0; h < hn; ++h) {
          sv[h] = _mm512_loadu_ps(sh + (h0 + h) * keys_per_tile);
          tile_max[h] = _mm512_mask_reduce_max_ps(valid, sv[h]);
        }
        const __m512 m_old = _mm512_maskz_loadu_ps(lanes, mh + h0);
        const __m512 m_new = _mm512_max_ps(m_old, _mm512_load_ps(tile_max));
        // exp(m_old - m_new): 1 when the max did not move, ~0 on the first tile (m_old = -inf).
        const __m512 al = exp_nonpositive(_mm512_sub_ps(m_old, m_new));
        _mm512_mask_storeu_ps(mh + h0, lanes, m_new);
        _mm512_mask_storeu_ps(ah + h0, lanes, al);
        for (int64_t h = 0; h < hn; ++h) {
          const __m512 p = _mm512_maskz_mov_ps(valid, exp_nonpositive(_mm512_sub_ps(sv[h], _mm512_set1_ps(mh[h0 + h]))));
          tile_sum[h] = _mm512_reduce_add_ps(p);
          _mm512_storeu_ps(sh + (h0 + h) * keys_per_tile, p);
        }
        _mm512_mask_storeu_ps(lh + h0, lanes,
                              _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, lh + h0), al, _mm512_load_ps(tile_sum)));
      }

      int64_t h = 0;
      for (; h + heads_per_pv <= group; h += heads_per_pv)
        pv_heads<HV, heads_per_pv>(vb, kv_stride, rows, sh + h * keys_per_tile, ah + h, acch + h * hd);
      for (; h < group; ++h) pv_heads<HV, 1>(vb, kv_stride, rows, sh + h * keys_per_tile, ah + h, acch + h * hd);
    }
    p0 += rows;
  }

  float* og = a.out + t * q_stride + g0 * group * hd;
  for (int64_t h = 0; h < nh; ++h) {
    const __m512 inv = _mm512_set1_ps(1.f / l[h]);
    for (int c = 0; c < HV; ++c)
      _mm512_storeu_ps(og + h * hd + c * 16, _mm512_mul_ps(_mm512_loadu_ps(acc + h * hd + c * 16), inv));
  }
}

}  // namespace

void paged_attention_item_avx512(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                                 int64_t kv_end, float* scratch) {
  switch (a.head_dim) {
    case 16: return item<1>(a, token, kv_begin, kv_end, scratch);
    case 32: return item<2>(a, token, kv_begin, kv_end, scratch);
    case 48: return item<3>(a, token, kv_begin, kv_end, scratch);
    case 64: return item<4>(a, token, kv_begin, kv_end, scratch);
    case 80: return item<5>(a, token, kv_begin, kv_end, scratch);
    case 96: return item<6>(a, token, kv_begin, kv_end, scratch);
    case 112: return item<7>(a, token, kv_begin, kv_end, scratch);
    case 128: return item<8>(a, token, kv_begin, kv_end, scratch);
    default:
      for (int64_t g = kv_begin; g < kv_end; ++g) pa_item(a, token, g, scratch);
  }
}

}  // namespace troupe::engine::cpu::detail
