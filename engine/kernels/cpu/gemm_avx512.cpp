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
constexpr int64_t kc = 256;    // depth per packed block
constexpr int64_t nc = 128;    // weight rows per block: 4 panels, 128 KiB of f32 at kc = 256

// 64-byte aligned float scratch that only grows.
float* aligned_scratch(std::vector<float>& v, int64_t count) {
  v.resize(size_t(count + 16));
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

// c_out[i, 0..32) = (c_in[i, 0..32) +) sum_k a[k * mr + i] * b[k * nr + 0..32) for tokens
// i < m_valid; c_in may be null (first depth block).
void micro_kernel(const float* a, const float* b, int64_t klen, const float* c_in, int64_t ld_in,
                  float* c_out, int64_t ld_out, int m_valid, __mmask16 m0, __mmask16 m1) {
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
    float* row = c_out + i * ld_out;
    __m512 v0 = acc[i][0], v1 = acc[i][1];
    if (c_in != nullptr) {
      v0 = _mm512_add_ps(v0, _mm512_load_ps(c_in + i * ld_in));
      v1 = _mm512_add_ps(v1, _mm512_load_ps(c_in + i * ld_in + 16));
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
  float* const a_base = aligned_scratch(a_pack, depth_blocks * strips * strip_floats);
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

  // Each thread takes a contiguous range of nc-row blocks. Per block and depth block, the weights
  // are converted once into [nc / nr panels][k][nr]; then every token strip runs over all panels
  // while its A strip sits in L1. Partial sums go to a contiguous per-thread buffer (tokens x nc)
  // that stays in L2: accumulating in y itself, whose rows are `rows` floats apart, aliases a few
  // cache sets and sent every depth block's partial sums to L3.
  const convert_fn convert = avx512_table().convert;
  const int64_t blocks = (rows + nc - 1) / nc;
  pool.parallel_for(blocks, 1, [&](int, int64_t jb, int64_t je) {
    thread_local std::vector<float> b_scratch, c_scratch, row_scratch;
    float* const b_pack = aligned_scratch(b_scratch, kc * nc);
    float* const c_buf = depth_blocks > 1 ? aligned_scratch(c_scratch, strips * mr * nc) : nullptr;
    float* const row_buf = aligned_scratch(row_scratch, kc);
    for (int64_t j = jb; j < je; ++j) {
      const int64_t row0 = j * nc;
      const int64_t brows = std::min(nc, rows - row0);
      const int64_t panels = (brows + nr - 1) / nr;
      for (int64_t db = 0; db < depth_blocks; ++db) {
        const int64_t k0 = db * kc, klen = std::min(kc, cols - k0);
        for (int64_t r = 0; r < panels * nr; ++r) {
          float* dst = b_pack + (r / nr) * kc * nr + r % nr;
          if (r < brows) {
            convert(w, row0 + r, k0, klen, row_buf);
            for (int64_t k = 0; k < klen; ++k) dst[k * nr] = row_buf[k];
          } else {
            for (int64_t k = 0; k < klen; ++k) dst[k * nr] = 0.f;
          }
        }
        const bool last = db == depth_blocks - 1;
        const float* c_in = db > 0 ? c_buf : nullptr;
        const float* a_block = a_base + db * strips * strip_floats;
        for (int64_t s = 0; s < strips; ++s) {
          const int m_valid = last ? int(std::min<int64_t>(mr, n - s * mr)) : mr;
          for (int64_t p = 0; p < panels; ++p) {
            const int64_t prow = last ? brows - p * nr : nr;
            const int64_t cb = (s * mr) * nc + p * nr;
            float* out = last ? y + s * mr * rows + row0 + p * nr : c_buf + cb;
            micro_kernel(a_block + s * strip_floats, b_pack + p * kc * nr, klen,
                         c_in != nullptr ? c_in + cb : nullptr, nc, out, last ? rows : nc, m_valid,
                         lanes(prow), lanes(prow - 16));
          }
        }
      }
    }
  });
}

}  // namespace troupe::engine::cpu::detail
