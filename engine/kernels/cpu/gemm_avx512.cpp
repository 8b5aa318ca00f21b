// Many-token matmul (prefill) on AVX-512: x is packed into 12-token strips, weight rows into
// 32-row panels, and a 12x32 micro-kernel keeps 24 accumulators in registers. Two formats share
// the blocking, packing schedule and prefetching:
// - f32: weights converted to f32 while packing (f32, f16, q8_0), FMAs against f32 x;
// - bf16: bf16 weights packed as they are stored, in pairs along k, x rounded to bf16 pairs, and
//   vdpbf16ps (two exact products per lane, twice the FMA rate); see kernels_impl.hpp.
// Packed buffers hold 32-bit slots: one f32, or one pair of bf16, so the two formats use the same
// buffer sizes with a depth block of 512 slots (512 or 1024 columns).
// Used instead of OpenBLAS because 0.3.21 runs its AVX2 kernels on CPUs it does not know (Zen 5),
// at a third of the AVX-512 FMA peak. On the 2-core Zen 5 VM the f32 micro-kernel tops out at
// ~220 GFLOP/s per core on L1-resident data (~71% of the FMA-chain peak; 6x64, 8x48, 14x32 shapes
// and embedded broadcasts measured the same), and the f32 GEMM at ~60% of peak on TinyLlama's
// prefill shapes (512 tokens). The bf16 micro-kernel reached ~93% of the vdpbf16ps peak on
// L1-resident data, against ~73% for the 6 x 4 row-dot kernel of matvec_avx512.cpp.
#include <immintrin.h>

// GCC 12's AVX-512 headers trip -Wuninitialized on their own _mm512_undefined_* helpers.
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

#include <algorithm>
#include <vector>

#include "engine/kernels/cpu/avx512_math.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

namespace {

constexpr int mr = 12;         // tokens per micro tile
constexpr int nr = 32;         // weight rows per panel: two zmm per token
// Depth per block, in 32-bit slots: a 24 KiB A strip stays in L1 across a block's panels. 512
// measured ~5% faster than 256 and 384 (fewer passes over the partial sums) with cold weights.
constexpr int64_t kc = 512;
// Weight rows per block: 4 panels, 256 KiB of f32 per packed block (twice that double-buffered)
// in L2; 64 and 256 measured slower.
constexpr int64_t nc = 128;

// 64-byte aligned float scratch that only grows.
float* aligned_scratch(std::vector<float>& v, int64_t count) {
  v.resize(size_t(count + 16));
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(v.data()) + 63) & ~uintptr_t(63));
}

// The packed formats. Slot s of a row or token holds column s (f32) or columns 2s, 2s + 1 (bf16).
enum class format { f32, bf16 };

template <format F>
inline constexpr int64_t columns_per_slot = F == format::bf16 ? 2 : 1;

// c_out[i, 0..32) = (c_in[i, 0..32) +) sum_s a[s * mr + i] . b[s * nr + 0..32) for tokens
// i < m_valid; c_in may be null (first depth block).
template <format F>
void micro_kernel(const float* a, const float* b, int64_t slots, const float* c_in, int64_t ld_in,
                  float* c_out, int64_t ld_out, int m_valid, __mmask16 m0, __mmask16 m1) {
  __m512 acc[mr][2];
#pragma GCC unroll 16
  for (int i = 0; i < mr; ++i) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
  for (int64_t k = 0; k < slots; ++k) {
    const __m512 b0 = _mm512_load_ps(b + k * nr);
    const __m512 b1 = _mm512_load_ps(b + k * nr + 16);
#pragma GCC unroll 16
    for (int i = 0; i < mr; ++i) {
      const __m512 av = _mm512_set1_ps(a[k * mr + i]);
      if constexpr (F == format::bf16) {
        acc[i][0] = _mm512_dpbf16_ps(acc[i][0], (__m512bh)b0, (__m512bh)av);
        acc[i][1] = _mm512_dpbf16_ps(acc[i][1], (__m512bh)b1, (__m512bh)av);
      } else {
        acc[i][0] = _mm512_fmadd_ps(av, b0, acc[i][0]);
        acc[i][1] = _mm512_fmadd_ps(av, b1, acc[i][1]);
      }
    }
  }
#pragma GCC unroll 16
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

// dst[s * mr + i] = slot s of x[t0 + i, k0 .. k0 + klen) for every slot, i < mr; zero for tokens
// >= n and for columns past klen. bf16: x rounded to bf16 (as round_bf16 does), paired.
template <format F>
void pack_a_strip(const float* x, int64_t n, int64_t cols, int64_t t0, int64_t k0, int64_t klen,
                  float* dst) {
  static_assert(mr <= 16);
  constexpr __mmask16 strip_lanes = __mmask16((1u << mr) - 1);
  constexpr int64_t step = 16 * columns_per_slot<F>;  // columns per 16 slots
  for (int64_t k = 0; k < klen; k += step) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) {
      if (i >= mr || t0 + i >= n) {
        r[i] = _mm512_setzero_ps();
        continue;
      }
      const float* src = x + (t0 + i) * cols + k0 + k;
      if constexpr (F == format::bf16) {
        const __m512 lo = _mm512_maskz_loadu_ps(lanes(klen - k), src);
        const __m512 hi = _mm512_maskz_loadu_ps(lanes(klen - k - 16), src + 16);
        r[i] = (__m512)_mm512_cvtne2ps_pbh(hi, lo);
      } else {
        r[i] = _mm512_maskz_loadu_ps(lanes(klen - k), src);
      }
    }
    transpose16(r);
    const int64_t slots = std::min<int64_t>(16, (klen - k + columns_per_slot<F> - 1) / columns_per_slot<F>);
    const int64_t s0 = k / columns_per_slot<F>;
    for (int64_t j = 0; j < slots; ++j) _mm512_mask_storeu_ps(dst + (s0 + j) * mr, strip_lanes, r[j]);
  }
}

// One weight block: rows [row0, row0 + rows) x depth [k0, k0 + klen), packed as
// [panel][k][nr] f32 with rows past `rows` zero.
struct block_ref {
  int64_t row0 = 0, rows = 0, k0 = 0, klen = 0;
  [[nodiscard]] int64_t groups() const { return (rows + nr - 1) / nr * (nr / 16); }
};

// Lines of one row's segment [k0, k0 + klen) that prefetch_lines covers: one spare, as rows
// need not start on a cache line (safetensors data follows a header of any length). Missing that
// last partial line cost a DRAM miss per row and block in the packing.
[[nodiscard]] int64_t lines_per_row(const weight_matrix& w, const block_ref& blk) {
  return int64_t((*row_bytes(w.type, blk.k0 + blk.klen) - *row_bytes(w.type, blk.k0) + 127) / 64);
}

// Prefetches into L2 lines [from, to) of a block's stored weights, counted row by row.
void prefetch_lines(const weight_matrix& w, const block_ref& blk, int64_t from, int64_t to) {
  const size_t stride = *row_bytes(w.type, w.cols);
  const size_t begin = *row_bytes(w.type, blk.k0);
  const int64_t per_row = lines_per_row(w, blk);
  int64_t r = from / per_row, line = from % per_row;  // one division per call, not per line
  for (int64_t l = from; l < to; ++l) {
    const uintptr_t row = reinterpret_cast<uintptr_t>(w.data) + size_t(blk.row0 + r) * stride + begin;
    _mm_prefetch(reinterpret_cast<const char*>((row & ~uintptr_t(63)) + size_t(line) * 64), _MM_HINT_T1);
    if (++line == per_row) line = 0, ++r;
  }
}

// Packs the 16 rows of group g into the panel layout [slot][nr]. f32: converted to f32 into
// `tile` [16][kc] (zero past klen and past the block's rows), then transposed 16x16 at a time.
// bf16: 32 stored columns (16 pairs) of each row loaded straight from the weights and transposed
// as 32-bit lanes.
template <format F>
void pack_group(const weight_matrix& w, const block_ref& blk, int64_t g, convert_fn convert,
                float* tile, float* b_pack) {
  float* dst = b_pack + (g * 16 / nr) * kc * nr + (g * 16) % nr;
  if constexpr (F == format::bf16) {
    for (int64_t k = 0; k < blk.klen; k += 32) {
      const __mmask32 m = blk.klen - k >= 32 ? ~__mmask32(0) : __mmask32((uint64_t(1) << (blk.klen - k)) - 1);
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i)
        r[i] = g * 16 + i < blk.rows
                   ? _mm512_castsi512_ps(_mm512_maskz_loadu_epi16(
                         m, static_cast<const uint16_t*>(w.data) + (blk.row0 + g * 16 + i) * w.cols + blk.k0 + k))
                   : _mm512_setzero_ps();
      transpose16(r);
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) _mm512_store_ps(dst + (k / 2 + i) * nr, r[i]);
    }
    return;
  }
  const int64_t klen16 = (blk.klen + 15) / 16 * 16;
  for (int64_t i = 0; i < 16; ++i) {
    float* t = tile + i * kc;
    const int64_t done = g * 16 + i < blk.rows ? blk.klen : 0;
    if (done > 0) convert(w, blk.row0 + g * 16 + i, blk.k0, blk.klen, t);
    std::fill(t + done, t + klen16, 0.f);
  }
  for (int64_t k = 0; k < klen16; k += 16) {
    __m512 r[16];
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) r[i] = _mm512_load_ps(tile + i * kc + k);
    transpose16(r);
#pragma GCC unroll 16
    for (int i = 0; i < 16; ++i) _mm512_store_ps(dst + (k + i) * nr, r[i]);
  }
}

template <format F>
void gemm(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, float* y) {
  constexpr int64_t kc_cols = kc * columns_per_slot<F>;  // columns per depth block
  const int64_t cols = w.cols;
  const int64_t rows = w.rows;
  const int64_t strips = (n + mr - 1) / mr;
  const int64_t depth_blocks = (cols + kc_cols - 1) / kc_cols;
  const int64_t strip_floats = kc * mr;

  // x packed as [depth block][strip][k][mr], zero-padded past n, so the micro-kernel reads one
  // contiguous stream. Owned by the calling thread, read by all.
  thread_local std::vector<float> a_pack;
  float* const a_base = aligned_scratch(a_pack, depth_blocks * strips * strip_floats);
  pool.parallel_for(strips, 1, [&](int, int64_t sb, int64_t se) {
    for (int64_t s = sb; s < se; ++s)
      for (int64_t db = 0; db < depth_blocks; ++db)
        pack_a_strip<F>(x, n, cols, s * mr, db * kc_cols, std::min(kc_cols, cols - db * kc_cols),
                        a_base + (db * strips + s) * strip_floats);
  });

  // Each thread takes a contiguous range of nc-row blocks and walks them depth block by depth
  // block. Every token strip runs over all panels of a block while its A strip sits in L1.
  // Partial sums go to a contiguous per-thread buffer (tokens x nc) that stays in L2:
  // accumulating in y itself, whose rows are `rows` floats apart, aliases a few cache sets and
  // sent every depth block's partial sums to L3.
  // The next block's weights are packed a 16-row group at a time between micro-kernel calls
  // (double-buffered), each group prefetched about one group's worth of calls before: a prefetch
  // a whole block ahead was evicted by the 1 MiB of A that streams through L2 per block.
  const convert_fn convert = avx512_table().convert;
  const int64_t blocks = (rows + nc - 1) / nc;
  pool.parallel_for(blocks, 1, [&](int, int64_t jb, int64_t je) {
    thread_local std::vector<float> b_scratch, c_scratch, tile_scratch;
    float* b_cur = aligned_scratch(b_scratch, 2 * kc * nc);
    float* b_next = b_cur + kc * nc;
    float* const c_buf = depth_blocks > 1 ? aligned_scratch(c_scratch, strips * mr * nc) : nullptr;
    float* const tile = aligned_scratch(tile_scratch, 16 * kc);
    auto block_at = [&](int64_t index) {  // index-th block of this thread, depth fastest
      const int64_t j = jb + index / depth_blocks, db = index % depth_blocks;
      return block_ref{j * nc, std::min(nc, rows - j * nc), db * kc_cols, std::min(kc_cols, cols - db * kc_cols)};
    };
    const int64_t count = (je - jb) * depth_blocks;
    block_ref cur = block_at(0);
    prefetch_lines(w, cur, 0, cur.rows * lines_per_row(w, cur));
    for (int64_t g = 0; g < cur.groups(); ++g) pack_group<F>(w, cur, g, convert, tile, b_cur);
    for (int64_t index = 0; index < count; ++index) {
      const int64_t db = index % depth_blocks;
      const int64_t panels = (cur.rows + nr - 1) / nr;
      const block_ref next = index + 1 < count ? block_at(index + 1) : block_ref{};
      const int64_t groups = next.groups(), calls = strips * panels;
      const int64_t lines = next.rows * lines_per_row(w, next);
      int64_t packed = 0, fetched = 0, call = 0;
      const bool last = db == depth_blocks - 1;
      const float* c_in = db > 0 ? c_buf : nullptr;
      const float* a_block = a_base + db * strips * strip_floats;
      for (int64_t s = 0; s < strips; ++s) {
        const int m_valid = last ? int(std::min<int64_t>(mr, n - s * mr)) : mr;
        for (int64_t p = 0; p < panels; ++p) {
          const int64_t prow = last ? cur.rows - p * nr : nr;
          const int64_t cb = (s * mr) * nc + p * nr;
          float* out = last ? y + s * mr * rows + cur.row0 + p * nr : c_buf + cb;
          micro_kernel<F>(a_block + s * strip_floats, b_cur + p * kc * nr,
                          (cur.klen + columns_per_slot<F> - 1) / columns_per_slot<F>,
                       c_in != nullptr ? c_in + cb : nullptr, nc, out, last ? rows : nc, m_valid,
                       lanes(prow), lanes(prow - 16));
          ++call;
          // The next strip of A, a quarter per panel, into L2: it comes from L3 otherwise.
          if (s + 1 < strips) {
            const char* next_a = reinterpret_cast<const char*>(a_block + (s + 1) * strip_floats);
            const int64_t bytes = strip_floats * int64_t(sizeof(float));
            for (int64_t off = p * bytes / panels; off < (p + 1) * bytes / panels; off += 64)
              _mm_prefetch(next_a + off, _MM_HINT_T1);
          }
          // Prefetch runs one 16-row group ahead of packing, a few lines per call.
          if (groups > 0) {
            const int64_t fetch_to = std::min(lines, call * lines / calls + lines / groups);
            if (fetch_to > fetched) prefetch_lines(w, next, fetched, fetch_to), fetched = fetch_to;
          }
          for (; packed < call * groups / calls; ++packed)
            pack_group<F>(w, next, packed, convert, tile, b_next);
        }
      }
      for (; packed < groups; ++packed) pack_group<F>(w, next, packed, convert, tile, b_next);
      std::swap(b_cur, b_next);
      cur = next;
    }
  });
}

}  // namespace

void gemm_avx512(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, float* y) {
  if (w.type == dtype::bf16)
    gemm<format::bf16>(pool, x, n, w, y);
  else
    gemm<format::f32>(pool, x, n, w, y);
}

}  // namespace troupe::engine::cpu::detail
