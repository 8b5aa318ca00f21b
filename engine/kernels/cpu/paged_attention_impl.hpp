// The paged-attention work item, written as plain loops that gcc auto-vectorizes, and compiled once
// per instruction set: paged_attention.cpp (x86-64 baseline, the scalar path),
// paged_attention_avx2.cpp and paged_attention_avx512.cpp (their folder's -m flags). Everything
// here has internal linkage so that the linker can never hand one path another path's code.
#pragma once

#include <algorithm>
#include <bit>
#include <cmath>
#include <cassert>
#include <cstdint>
#include <limits>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {
namespace {

// Lanes of the partial sums in a dot product: one zmm, two ymm or four xmm accumulators.
constexpr int pa_lanes = 16;

inline float pa_dot(const float* __restrict a, const float* __restrict b, int64_t n) {
  float part[pa_lanes] = {};
  int64_t e = 0;
  for (; e + pa_lanes <= n; e += pa_lanes)
    for (int j = 0; j < pa_lanes; ++j) part[j] += a[e + j] * b[e + j];
  float s = 0.f;
  for (; e < n; ++e) s += a[e] * b[e];
  for (int j = 0; j < pa_lanes; j += 2) s += part[j] + part[j + 1];
  return s;
}

// exp(x) for x <= 0 (scores minus their running max): 2^n * p(r), x = n ln2 + r, |r| <= ln2/2,
// p of degree 6 (relative error ~2e-7, as softmax_avx512). Inputs below -87 (and -inf) give
// ~1.6e-38 instead of 0, which only ever multiplies a zero sum or accumulator. Rounding uses the
// 1.5 * 2^23 trick so the loop vectorizes without -ffast-math on every path.
inline float pa_exp_nonpositive(float x) {
  x = x < -87.f ? -87.f : x;
  constexpr float round_magic = 12582912.f;  // 1.5 * 2^23
  const float n = (x * 1.44269504f + round_magic) - round_magic;
  float r = x - n * 0.693145752f;  // ln2 split in two parts
  r = r - n * 1.42860677e-6f;
  float p = 1.f / 720;
  p = p * r + 1.f / 120;
  p = p * r + 1.f / 24;
  p = p * r + 1.f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  const int32_t bits = (int32_t(n) + 127) << 23;  // n in [-126, 0]
  return p * std::bit_cast<float>(bits);
}

// Work item (token t, kv head g): the group's query heads over keys 0..pos[t], taken in tiles of
// up to paged_attention_tile consecutive rows of one block. Per tile: scores [group, rows], then
// per head the running max m, rescale factor exp(m_old - m), running sum l and accumulator
// acc[head_dim] (online softmax), then acc += p * v_row for each row. Each K and V row is read once
// for all the group's heads.
inline void pa_item(const paged_attention_args& a, int64_t t, int64_t g, float* scratch) {
  const int64_t group = a.n_heads / a.n_kv_heads, hd = a.head_dim, bs = a.block_size;
  const int64_t q_stride = a.n_heads * hd, kv_stride = a.n_kv_heads * hd;
  const float scale = float(1.0 / std::sqrt(double(hd)));
  const int64_t len = int64_t(a.pos[size_t(t)]) + 1;
  const std::span<const int32_t> table = a.tables[size_t(a.token_seq[size_t(t)])];
  assert(len >= 1 && (len - 1) / bs < int64_t(table.size()));

  float* __restrict acc = scratch;           // [group, hd]
  float* __restrict m = acc + group * hd;    // [group]
  float* __restrict l = m + group;           // [group]
  float* __restrict s = l + group;           // [group, paged_attention_tile]
  constexpr int64_t tile = paged_attention_tile;
  for (int64_t i = 0; i < group * hd; ++i) acc[i] = 0.f;
  for (int64_t h = 0; h < group; ++h) m[h] = -std::numeric_limits<float>::infinity(), l[h] = 0.f;
  const float* qg = a.q + t * q_stride + g * group * hd;  // [group, hd]

  for (int64_t p0 = 0; p0 < len;) {
    const int64_t row0 = p0 % bs;
    const int64_t rows = std::min({tile, bs - row0, len - p0});
    const int64_t block = table[size_t(p0 / bs)];
    const int64_t base = (block * bs + row0) * kv_stride + g * hd;
    const float* kb = a.k_cache + base;
    const float* vb = a.v_cache + base;
    // The next tile, prefetched row by row while this one is scored: rows are kv_stride apart
    // (often 4 KiB, one row per page), which the hardware prefetchers do not follow.
    const int64_t n0 = p0 + rows;
    const int64_t next_rows = n0 < len ? std::min({tile, bs - n0 % bs, len - n0}) : 0;
    const int64_t next_base =
        next_rows > 0 ? (int64_t(table[size_t(n0 / bs)]) * bs + n0 % bs) * kv_stride + g * hd : 0;

    for (int64_t r = 0; r < rows; ++r) {
      if (r < next_rows)
        for (int64_t e = 0; e < hd; e += 16) {
          __builtin_prefetch(a.k_cache + next_base + r * kv_stride + e);
          __builtin_prefetch(a.v_cache + next_base + r * kv_stride + e);
        }
      const float* kr = kb + r * kv_stride;
      for (int64_t h = 0; h < group; ++h) s[h * tile + r] = pa_dot(qg + h * hd, kr, hd) * scale;
    }
    for (int64_t h = 0; h < group; ++h) {
      float* sh = s + h * tile;
      float mx = m[h];
      for (int64_t r = 0; r < rows; ++r) mx = sh[r] > mx ? sh[r] : mx;
      const float alpha = pa_exp_nonpositive(m[h] - mx);
      m[h] = mx;
      float sum = 0.f;
      for (int64_t r = 0; r < rows; ++r) sh[r] = pa_exp_nonpositive(sh[r] - mx);
      for (int64_t r = 0; r < rows; ++r) sum += sh[r];
      l[h] = l[h] * alpha + sum;
      if (alpha != 1.f) {
        float* ah = acc + h * hd;
        for (int64_t e = 0; e < hd; ++e) ah[e] *= alpha;
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      const float* __restrict vr = vb + r * kv_stride;
      for (int64_t h = 0; h < group; ++h) {
        const float p = s[h * tile + r];
        float* __restrict ah = acc + h * hd;
        for (int64_t e = 0; e < hd; ++e) ah[e] += p * vr[e];
      }
    }
    p0 += rows;
  }

  float* og = a.out + t * q_stride + g * group * hd;
  for (int64_t h = 0; h < group; ++h) {
    const float inv = 1.f / l[h];
    for (int64_t e = 0; e < hd; ++e) og[h * hd + e] = acc[h * hd + e] * inv;
  }
}

}  // namespace
}  // namespace troupe::engine::cpu::detail
