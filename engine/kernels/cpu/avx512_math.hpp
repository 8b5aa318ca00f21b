// Vector helpers shared by the AVX-512 kernels (*_avx512.cpp).
// Include only from *_avx512.cpp files: they are the ones compiled with -mavx512*.
#pragma once

#include <immintrin.h>

namespace troupe::engine::cpu::detail {

// exp(x) for x <= 0 (softmax inputs after subtracting the max): 2^n * p(r) with x = n ln2 + r,
// |r| <= ln2/2, p a degree-6 polynomial; relative error ~2e-7. Inputs below -87 give 0.
inline __m512 exp_nonpositive(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.0f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504f)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693145752f), x);   // ln2 split in two parts
  r = _mm512_fnmadd_ps(n, _mm512_set1_ps(1.42860677e-6f), r);
  __m512 p = _mm512_set1_ps(1.0f / 720);
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 120));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 24));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f / 6));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(0.5f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.0f));
  return _mm512_scalef_ps(p, n);
}

// One 32-value block of x quantized as path_table::quantize_q8 defines it (quantize_q8_portable's
// arithmetic on 16 lanes, round to nearest even as nearbyint; the values stay within [-127, 127],
// so the narrowing never saturates): the quants as two 16-byte vectors; returns the scale.
inline float quantize_block_q8(const float* v, __m128i& q0, __m128i& q1) {
  const __m512 sign = _mm512_set1_ps(-0.f);
  const __m512 v0 = _mm512_loadu_ps(v), v1 = _mm512_loadu_ps(v + 16);
  const float d = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1))) / 127.f;
  const __m512 inv = _mm512_set1_ps(d > 0 ? 1.f / d : 0.f);
  constexpr int round = _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC;
  q0 = _mm512_cvtepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v0, inv), round));
  q1 = _mm512_cvtepi32_epi8(_mm512_cvt_roundps_epi32(_mm512_mul_ps(v1, inv), round));
  return d;
}

// r[i] (row i, 16 32-bit lanes) becomes column i: r[i][j] = old r[j][i]. 64 shuffles.
inline void transpose16(__m512 r[16]) {
  __m512 t[16];
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // Per 128-bit lane k: u[4b + i] holds rows 4b..4b+3 of column 4k + i.
  __m512 u[16];
  for (int b = 0; b < 4; ++b) {
    u[4 * b + 0] = _mm512_shuffle_ps(t[4 * b], t[4 * b + 2], 0x44);
    u[4 * b + 1] = _mm512_shuffle_ps(t[4 * b], t[4 * b + 2], 0xEE);
    u[4 * b + 2] = _mm512_shuffle_ps(t[4 * b + 1], t[4 * b + 3], 0x44);
    u[4 * b + 3] = _mm512_shuffle_ps(t[4 * b + 1], t[4 * b + 3], 0xEE);
  }
  for (int i = 0; i < 4; ++i) {
    const __m512 va = _mm512_shuffle_f32x4(u[i], u[4 + i], 0x88);  // lanes 0, 2 of each
    const __m512 vb = _mm512_shuffle_f32x4(u[i], u[4 + i], 0xDD);  // lanes 1, 3
    const __m512 wa = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0x88);
    const __m512 wb = _mm512_shuffle_f32x4(u[8 + i], u[12 + i], 0xDD);
    r[i] = _mm512_shuffle_f32x4(va, wa, 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(va, wa, 0xDD);
    r[4 + i] = _mm512_shuffle_f32x4(vb, wb, 0x88);
    r[12 + i] = _mm512_shuffle_f32x4(vb, wb, 0xDD);
  }
}

}  // namespace troupe::engine::cpu::detail
