// Many-token matmul (prefill) on AVX-512: x is packed into 12-token strips, weight rows into
// 32-row f32 panels (converting f16/bf16/q8_0 while packing), and a 12x32 FMA micro-kernel
// keeps 24 accumulators in registers. Used instead of OpenBLAS because 0.3.21 runs its AVX2
// kernels on CPUs it does not know (Zen 5), at a third of the AVX-512 FMA peak.
#include <immintrin.h>

// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* helpers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <vector>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

constexpr int mr = 12;         // tokens per micro tile
constexpr int nr = 32;         // weight rows per panel: two zmm per token
constexpr int64_t kc = 256;    // depth per packed block: a 32 KiB weight panel stays in L1

// c[i, 0..32) (+)= sum_k a[k * mr + i] * b[k * nr + 0..32) for tokens i < m_valid.
void micro_kernel(const float* a, const float* b, int64_t klen, float* c, int64_t ldc, int m_valid,
                  __mmask16 m0, __mmask16 m1, bool accumulate) {
  __m512 acc[mr][2];
#pragma GCC unroll 12
  for (int i = 0; i < mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < klen; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * nr);
    const __m512 b1 = _mm512_load_ps(b + k * nr + 16);
#pragma GCC unroll 12
    for (int i = 0; i < mr; ++i) {
      const __m512 av = _mm512_set1_ps(a[k * mr + i]);
      acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
      acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < mr; ++i) {
    if (i >= m_valid) break;
    float* row = c + i * ldc;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(m0, row));
      v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(m1, row + 16));
    }
    _mm512_mask_storeu_ps(row, m0, v0);
    _mm512_mask_storeu_ps(row + 16, m1, v1);
  }
}

__mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

}  // namespace

void gemm_avx512(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, float* y) {
  const int64_t cols = w.cols;
  const int64_t rows = w.rows;
  const int64_t strips = (n + mr - 1) / mr;
  const int64_t depth_blocks = (cols + kc - 1) / kc;
  const int64_t strip_floats = kc * mr;

  // x packed as [depth block][strip][k][mr], zero-padded past n, so the micro-kernel reads one
  // contiguous stream. Owned by the calling thread, read by all.
  thread_local std::vector<float> a_pack;
  a_pack.resize(size_t(depth_blocks * strips * strip_floats));
  float* const a_base = a_pack.data();
  pool.parallel_for(strips, 1, [&](int, int64_t sb, int64_t se) {
    for (int64_t s = sb; s < se; ++s)
      for (int64_t db = 0; db < depth_blocks; ++db) {
        const int64_t k0 = db * kc, klen = std::min(kc, cols - k0);
        float* dst = a_base + (db * strips + s) * strip_floats;
        for (int i = 0; i < mr; ++i) {
          const int64_t t = s * mr + i;
          if (t < n) {
            const float* src = x + t * cols + k0;
            for (int64_t k = 0; k < klen; ++k) dst[k * mr + i] = src[k];
          } else {
            for (int64_t k = 0; k < klen; ++k) dst[k * mr + i] = 0.f;
          }
        }
      }
  });

  const convert_fn convert = avx512_table().convert;
  const int64_t panels = (rows + nr - 1) / nr;
  pool.parallel_for(panels, 1, [&](int, int64_t pb, int64_t pe) {
    thread_local std::vector<float> scratch;
    scratch.resize(size_t(kc * nr + kc + 16));
    // 64-byte aligned panel for aligned loads in the micro-kernel.
    float* b_pack = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
    float* row_buf = b_pack + kc * nr;
    for (int64_t p = pb; p < pe; ++p) {
      const int64_t row0 = p * nr;
      const int64_t prow = std::min<int64_t>(nr, rows - row0);
      const __mmask16 m0 = lanes(prow), m1 = lanes(prow - 16);
      for (int64_t db = 0; db < depth_blocks; ++db) {
        const int64_t k0 = db * kc, klen = std::min(kc, cols - k0);
        for (int64_t j = 0; j < nr; ++j) {
          if (j < prow) {
            convert(w, row0 + j, k0, klen, row_buf);
            for (int64_t k = 0; k < klen; ++k) b_pack[k * nr + j] = row_buf[k];
          } else {
            for (int64_t k = 0; k < klen; ++k) b_pack[k * nr + j] = 0.f;
          }
        }
        const float* a_block = a_base + db * strips * strip_floats;
        for (int64_t s = 0; s < strips; ++s) {
          const int m_valid = int(std::min<int64_t>(mr, n - s * mr));
          micro_kernel(a_block + s * strip_floats, b_pack, klen, y + s * mr * rows + row0, rows,
                       m_valid, m0, m1, db > 0);
        }
      }
    }
  });
}

}  // namespace troupe::engine::cpu::detail
