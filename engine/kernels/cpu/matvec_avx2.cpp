// AVX2 + FMA + F16C path: row dot products, weight-row conversion and the probes for CPUs
// without AVX-512 (or TROUPE_SIMD=avx2). Column tails fall back to scalar loops.
#include <immintrin.h>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

template <class T>
const T* row_of(const weight_matrix& w, int64_t row) {
  return reinterpret_cast<const T*>(static_cast<const uint8_t*>(w.data) +
                                    size_t(row) * *row_bytes(w.type, w.cols));
}

float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

template <class Kernel>
void over_rows(const Kernel& kernel, int64_t rb, int64_t re, float* y) {
  int64_t r = rb;
  for (; r + 4 <= re; r += 4) kernel.template run<4>(r, y + r);
  for (; r < re; ++r) kernel.template run<1>(r, y + r);
}

// bf16 -> f32 is a 16-bit shift into the high half of each lane.
inline __m256 bf16x8_to_f32(const uint16_t* p) {
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

inline __m256 f16x8_to_f32(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}

// Weight types stored per element (f32, f16, bf16): Format::load turns 8 weights into f32,
// Format::scalar one (for the column tail).
template <class T, class Format>
struct elementwise_kernel {
  const weight_matrix& w;
  const float* x;
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t cols = w.cols;
    const T* p = row_of<T>(w, row);
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 16 <= cols; k += 16) {
      const __m256 x0 = _mm256_loadu_ps(x + k), x1 = _mm256_loadu_ps(x + k + 8);
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        acc[r][0] = _mm256_fmadd_ps(Format::load(p + r * cols + k), x0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(Format::load(p + r * cols + k + 8), x1, acc[r][1]);
      }
    }
    for (int r = 0; r < R; ++r) {
      float sum = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
      for (int64_t j = k; j < cols; ++j) sum += Format::scalar(p[r * cols + j]) * x[j];
      out[r] = sum;
    }
  }
};

struct f32_format {
  static __m256 load(const float* p) { return _mm256_loadu_ps(p); }
  static float scalar(float v) { return v; }
};
struct f16_format {
  static __m256 load(const uint16_t* p) { return f16x8_to_f32(p); }
  static float scalar(uint16_t h) { return _cvtsh_ss(h); }
};
struct bf16_format {
  static __m256 load(const uint16_t* p) { return bf16x8_to_f32(p); }
  static float scalar(uint16_t h) { return bf16_to_f32(h); }
};

// Per 32-block: maddubs(|w| as unsigned, x with w's sign) then madd to int32. |w| <= 128 and
// |x| <= 127 keep the int16 pair sums below 32767, so this is exact for every w.
struct q8_0_kernel {
  const weight_matrix& w;
  const int8_t* xq;
  const float* xs;
  template <int R>
  void run(int64_t row, float* out) const {
    const int64_t blocks = w.cols / q8_0_block;
    const block_q8_0* p = row_of<block_q8_0>(w, row);
    const __m256i ones = _mm256_set1_epi16(1);
    __m256 acc[R][2];
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t i = 0; i < blocks; ++i) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xq + i * 32));
#pragma GCC unroll 4
      for (int r = 0; r < R; ++r) {
        const block_q8_0& b = p[r * blocks + i];
        const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b.qs));
        const __m256i prod = _mm256_maddubs_epi16(_mm256_abs_epi8(wv), _mm256_sign_epi8(xv, wv));
        const __m256 dot = _mm256_cvtepi32_ps(_mm256_madd_epi16(prod, ones));
        acc[r][i & 1] = _mm256_fmadd_ps(dot, _mm256_set1_ps(_cvtsh_ss(b.d) * xs[i]), acc[r][i & 1]);
      }
    }
    for (int r = 0; r < R; ++r) out[r] = hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
  }
};

void rows_f32(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  over_rows(elementwise_kernel<float, f32_format>{w, a.f32 + t * a.cols}, rb, re, y);
}

void rows_f16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
              float* y) {
  over_rows(elementwise_kernel<uint16_t, f16_format>{w, a.f32 + t * a.cols}, rb, re, y);
}

void rows_bf16(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  over_rows(elementwise_kernel<uint16_t, bf16_format>{w, a.f32 + t * a.cols}, rb, re, y);
}

void rows_q8_0(const weight_matrix& w, const activations& a, int64_t t, int64_t rb, int64_t re,
               float* y) {
  over_rows(q8_0_kernel{w, a.q8 + t * a.cols, a.q8_scale + t * (a.cols / q8_0_block)}, rb, re, y);
}

void convert_avx2(const weight_matrix& w, int64_t row, int64_t k0, int64_t count, float* out) {
  int64_t k = 0;
  switch (w.type) {
    case dtype::f32:
      std::memcpy(out, row_of<float>(w, row) + k0, size_t(count) * 4);
      return;
    case dtype::f16: {
      const uint16_t* p = row_of<uint16_t>(w, row) + k0;
      for (; k + 8 <= count; k += 8) _mm256_storeu_ps(out + k, f16x8_to_f32(p + k));
      for (; k < count; ++k) out[k] = _cvtsh_ss(p[k]);
      return;
    }
    case dtype::bf16: {
      const uint16_t* p = row_of<uint16_t>(w, row) + k0;
      for (; k + 8 <= count; k += 8) _mm256_storeu_ps(out + k, bf16x8_to_f32(p + k));
      for (; k < count; ++k) out[k] = bf16_to_f32(p[k]);
      return;
    }
    case dtype::q8_0: {
      const block_q8_0* b = row_of<block_q8_0>(w, row) + k0 / q8_0_block;
      for (; k < count; k += 8) {  // count is a multiple of 32 for q8_0
        const block_q8_0& blk = b[k / q8_0_block];
        const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk.qs + k % q8_0_block));
        const __m256 v = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
        _mm256_storeu_ps(out + k, _mm256_mul_ps(v, _mm256_set1_ps(_cvtsh_ss(blk.d))));
      }
      return;
    }
  }
}


double read_avx2(const float* p, int64_t count) {
  __m256 s[8];
  for (auto& v : s) v = _mm256_setzero_ps();
  for (int64_t i = 0; i + 64 <= count; i += 64)
#pragma GCC unroll 8
    for (int j = 0; j < 8; ++j) s[j] = _mm256_add_ps(s[j], _mm256_load_ps(p + i + 8 * j));
  __m256 t = s[0];
  for (int j = 1; j < 8; ++j) t = _mm256_add_ps(t, s[j]);
  return hsum(t);
}

float fma_chains_avx2(int64_t iterations) {
  // Distinct starts and every chain through the asm, as fma_chains_avx512 (matvec_avx512.cpp).
  const __m256 b = _mm256_set1_ps(0.9999f), c = _mm256_set1_ps(1e-4f);
  __m256 a[10];
#pragma GCC unroll 10
  for (int i = 0; i < 10; ++i) a[i] = _mm256_set1_ps(1.f + 0.01f * float(i));
  for (int64_t it = 0; it < iterations; ++it) {
#pragma GCC unroll 10
    for (int i = 0; i < 10; ++i) a[i] = _mm256_fmadd_ps(a[i], b, c);
    asm volatile("" : "+v"(a[0]), "+v"(a[1]), "+v"(a[2]), "+v"(a[3]), "+v"(a[4]));
    asm volatile("" : "+v"(a[5]), "+v"(a[6]), "+v"(a[7]), "+v"(a[8]), "+v"(a[9]));
  }
  __m256 s = a[0];
#pragma GCC unroll 10
  for (int i = 1; i < 10; ++i) s = _mm256_add_ps(s, a[i]);
  return hsum(s);
}

}  // namespace

const path_table& avx2_table() {
  static const path_table table{
      {rows_f32, rows_f16, rows_bf16, rows_q8_0},
      nullptr,
      nullptr,
      nullptr,
      convert_avx2,
      quantize_q8_portable,
      false,
      softmax_scalar,
      log_sum_exp_scalar,
      silu_mul_scalar,
      read_avx2,
      fma_chains_avx2,
      10 * 8 * 2,
      nullptr,
      0,
  };
  return table;
}

}  // namespace troupe::engine::cpu::detail
