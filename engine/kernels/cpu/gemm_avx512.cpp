// Many-token matmul (prefill) on AVX-512: x is packed into 12-token strips, weight rows into
// 32-row panels, and a 12x32 micro-kernel keeps 24 accumulators in registers. Three formats
// share the blocking, packing schedule and prefetching:
// - f32: weights converted to f32 while packing (f32, f16), FMAs against f32 x;
// - bf16: bf16 weights packed as they are stored, in pairs along k, x rounded to bf16 pairs, and
//   vdpbf16ps (two exact products per lane, twice the FMA rate); see kernels_impl.hpp;
// - q8: q8_0 weights packed as unsigned bytes in fours along k with their block scales, x
//   quantized per 32-block to int8 exactly as the one-token path does (llama.cpp's q8_0
//   activations), and vpdpbusd per block (four products per lane) with one scaled FMA per block;
//   6 tokens at a time (12 int32 and 12 f32 accumulators).
// Packed buffers hold 32-bit slots: one f32, one pair of bf16 or four int8, so the formats use the
// same buffer sizes with a depth block of 512 slots (512, 1024 or 2048 columns); q8 keeps its
// scales after the slots (panel_slots, strip_slots).
// Used instead of OpenBLAS because 0.3.21 runs its AVX2 kernels on CPUs it does not know (Zen 5),
// at a third of the AVX-512 FMA peak. On the 2-core Zen 5 VM (peaks as measured since session 8:
// ~210 GFLOP/s of FMAs and ~420 of vdpbf16ps per core) the f32 micro-kernel runs at about the FMA
// peak on L1-resident data (6x64, 8x48, 14x32 shapes and embedded broadcasts measured the same),
// and the bf16 micro-kernel at 97-100% of the vdpbf16ps peak, L1- or L2-resident (12x32, 8x48,
// 6x64 and 4x96 alike). In place the bf16 GEMM reaches ~75% of that peak on TinyLlama's prefill
// shapes: the rest goes to packing weight blocks read from memory and to the edges of blocks.
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

// The end of every micro-kernel: c_out[i, 0..32) = (c_in[i, 0..32) +) acc[i] for tokens
// i < m_valid, the two halves masked by m0 / m1 (rows past the matrix). Always inlined, so that
// the accumulators stay in registers.
template <int M>
[[gnu::always_inline]] inline void store_tile(const __m512 (&acc)[M][2], int m_valid, const float* c_in,
                                              int64_t ld_in, float* c_out, int64_t ld_out, __mmask16 m0,
                                              __mmask16 m1) {
#pragma GCC unroll 16
  for (int i = 0; i < M; ++i) {
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

// The packed formats. Slot s of a row or token holds column s (f32), columns 2s, 2s + 1 (bf16) or
// columns 4s .. 4s + 3 (q8).
enum class format { f32, bf16, q8 };

template <format F>
inline constexpr int64_t columns_per_slot = F == format::q8 ? 4 : F == format::bf16 ? 2 : 1;

// 32-bit slots per packed weight panel row (of nr) and per token strip row (of mr): the depth
// block, then for q8 the weights' block scales [kc / 8][nr], or the tokens' block scales and
// corrections [kc / 8][mr] each. The other formats leave the tail unused.
constexpr int64_t panel_slots = kc + kc / 8;
constexpr int64_t strip_slots = kc + kc / 4;
constexpr int64_t q8_slots_per_block = q8_0_block / 4;

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
  store_tile<mr>(acc, m_valid, c_in, ld_in, c_out, ld_out, m0, m1);
}

__mmask16 lanes(int64_t count) {
  return count >= 16 ? __mmask16(0xffff) : count <= 0 ? __mmask16(0) : __mmask16((1u << count) - 1);
}

// The q8 micro-kernel on tokens i0 .. i0 + 5 of a strip: per 32-column block, int32 sums start
// at the tokens' corrections (-128 * sum of their quants: the weights are offset to unsigned),
// take 8 vpdpbusd per token and half-panel, and join the f32 sums scaled by the weight scale times
// the token scale. Same contract as micro_kernel otherwise.
void micro_kernel_q8(const float* a, const float* b, int64_t blocks, int i0, const float* c_in,
                     int64_t ld_in, float* c_out, int64_t ld_out, int m_valid, __mmask16 m0,
                     __mmask16 m1) {
  constexpr int mh = 6;
  const int32_t* aq = reinterpret_cast<const int32_t*>(a) + i0;
  const float* a_scale = a + kc * mr + i0;
  const int32_t* a_corr = reinterpret_cast<const int32_t*>(a + kc * mr + kc / 8 * mr) + i0;
  const float* b_scale = b + kc * nr;
  __m512 f[mh][2];
#pragma GCC unroll 8
  for (int i = 0; i < mh; ++i) f[i][0] = f[i][1] = _mm512_setzero_ps();
  for (int64_t blk = 0; blk < blocks; ++blk) {
    __m512i acc[mh][2];
#pragma GCC unroll 8
    for (int i = 0; i < mh; ++i) acc[i][0] = acc[i][1] = _mm512_set1_epi32(a_corr[blk * mr + i]);
#pragma GCC unroll 8
    for (int64_t s = blk * q8_slots_per_block; s < (blk + 1) * q8_slots_per_block; ++s) {
      const __m512i b0 = _mm512_load_si512(b + s * nr);
      const __m512i b1 = _mm512_load_si512(b + s * nr + 16);
#pragma GCC unroll 8
      for (int i = 0; i < mh; ++i) {
        const __m512i av = _mm512_set1_epi32(aq[s * mr + i]);
        acc[i][0] = _mm512_dpbusd_epi32(acc[i][0], b0, av);
        acc[i][1] = _mm512_dpbusd_epi32(acc[i][1], b1, av);
      }
    }
    const __m512 w0 = _mm512_load_ps(b_scale + blk * nr), w1 = _mm512_load_ps(b_scale + blk * nr + 16);
#pragma GCC unroll 8
    for (int i = 0; i < mh; ++i) {
      const __m512 xs = _mm512_set1_ps(a_scale[blk * mr + i]);
      f[i][0] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][0]), _mm512_mul_ps(w0, xs), f[i][0]);
      f[i][1] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(acc[i][1]), _mm512_mul_ps(w1, xs), f[i][1]);
    }
  }
  store_tile<mh>(f, m_valid, c_in, ld_in, c_out, ld_out, m0, m1);
}

// q8: tokens t0 .. t0 + mr - 1 of x[., k0 .. k0 + klen) quantized per 32-block exactly as
// matmul's prepare() does (quantize_block_q8): quants as [slot][mr] int32 (four int8), then
// scales [block][mr] and corrections -128 * sum(q) [block][mr]; zero for tokens >= n. klen is a
// multiple of 32.
void pack_a_strip_q8(const float* x, int64_t n, int64_t cols, int64_t t0, int64_t k0, int64_t klen,
                     float* dst) {
  int32_t* q = reinterpret_cast<int32_t*>(dst);
  float* scale = dst + kc * mr;
  int32_t* corr = reinterpret_cast<int32_t*>(dst + kc * mr + kc / 8 * mr);
  for (int64_t blk = 0; blk < klen / q8_0_block; ++blk)
    for (int i = 0; i < mr; ++i) {
      int32_t words[q8_slots_per_block] = {};
      float d = 0;
      int32_t sum = 0;
      if (t0 + i < n) {
        __m128i q0, q1;
        d = quantize_block_q8(x + (t0 + i) * cols + k0 + blk * q8_0_block, q0, q1);
        sum = _mm512_reduce_add_epi32(_mm512_add_epi32(_mm512_cvtepi8_epi32(q0), _mm512_cvtepi8_epi32(q1)));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(words), q0);
        _mm_storeu_si128(reinterpret_cast<__m128i*>(words + 4), q1);
      }
      for (int j = 0; j < q8_slots_per_block; ++j) q[(blk * q8_slots_per_block + j) * mr + i] = words[j];
      scale[blk * mr + i] = d;
      corr[blk * mr + i] = -128 * sum;
    }
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
  float* const panel = b_pack + (g * 16 / nr) * panel_slots * nr;
  float* dst = panel + (g * 16) % nr;
  if constexpr (F == format::q8) {
    // Two 32-column blocks (16 four-byte slots) of the 16 rows per transpose, offset to unsigned
    // (w ^ 0x80 == w + 128); the rows' block scales after the panel's slots.
    const int64_t blocks = blk.klen / q8_0_block;
    const size_t stride = *row_bytes(w.type, w.cols);
    const auto row = [&](int i) {
      return reinterpret_cast<const block_q8_0*>(static_cast<const uint8_t*>(w.data) + size_t(blk.row0 + g * 16 + i) * stride) +
             blk.k0 / q8_0_block;
    };
    float* scale = panel + kc * nr + (g * 16) % nr;
    const __m512i flip = _mm512_set1_epi8(char(0x80));
    for (int64_t b = 0; b < blocks; b += 2) {
      const bool pair = b + 1 < blocks;
      __m512 r[16];
#pragma GCC unroll 16
      for (int i = 0; i < 16; ++i) {
        if (g * 16 + i >= blk.rows) {
          r[i] = _mm512_setzero_ps();
          scale[b * nr + i] = 0.f;
          if (pair) scale[(b + 1) * nr + i] = 0.f;
          continue;
        }
        const block_q8_0* q = row(i) + b;
        const __m256i lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[0].qs));
        const __m256i hi = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(q[1].qs)) : _mm256_setzero_si256();
        r[i] = _mm512_castsi512_ps(_mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1));
        scale[b * nr + i] = _cvtsh_ss(q[0].d);
        if (pair) scale[(b + 1) * nr + i] = _cvtsh_ss(q[1].d);
      }
      transpose16(r);
      const int64_t slots = pair ? 2 * q8_slots_per_block : q8_slots_per_block;
      for (int64_t j = 0; j < slots; ++j)
        _mm512_store_ps(dst + (b * q8_slots_per_block + j) * nr,
                        _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(r[j]), flip)));
    }
    return;
  }
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
  const int64_t strip_floats = strip_slots * mr;

  // x packed as [depth block][strip][k][mr], zero-padded past n, so the micro-kernel reads one
  // contiguous stream. Owned by the calling thread, read by all.
  thread_local std::vector<float> a_pack;
  float* const a_base = aligned_scratch(a_pack, depth_blocks * strips * strip_floats);
  pool.parallel_for(strips, 1, [&](int, int64_t sb, int64_t se) {
    for (int64_t s = sb; s < se; ++s)
      for (int64_t db = 0; db < depth_blocks; ++db)
        if constexpr (F == format::q8)
          pack_a_strip_q8(x, n, cols, s * mr, db * kc_cols, std::min(kc_cols, cols - db * kc_cols),
                          a_base + (db * strips + s) * strip_floats);
        else
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
    float* b_cur = aligned_scratch(b_scratch, 2 * panel_slots * nc);
    float* b_next = b_cur + panel_slots * nc;
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
          const float* a_strip = a_block + s * strip_floats;
          const float* b_panel = b_cur + p * panel_slots * nr;
          if constexpr (F == format::q8) {
            for (int i0 = 0; i0 < mr; i0 += 6)
              if (m_valid > i0)
                micro_kernel_q8(a_strip, b_panel, cur.klen / q8_0_block, i0,
                                c_in != nullptr ? c_in + cb + i0 * nc : nullptr, nc,
                                out + i0 * (last ? rows : nc), last ? rows : nc, m_valid - i0,
                                lanes(prow), lanes(prow - 16));
          } else {
            micro_kernel<F>(a_strip, b_panel, (cur.klen + columns_per_slot<F> - 1) / columns_per_slot<F>,
                            c_in != nullptr ? c_in + cb : nullptr, nc, out, last ? rows : nc, m_valid,
                            lanes(prow), lanes(prow - 16));
          }
          ++call;
          // The next strip of A, a quarter per panel, into L2: it comes from L3 otherwise.
          if (s + 1 < strips) {
            const char* next_a = reinterpret_cast<const char*>(a_block + (s + 1) * strip_floats);
            const int64_t bytes = (F == format::q8 ? strip_floats : kc * mr) * int64_t(sizeof(float));
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
  else if (w.type == dtype::q8_0)
    gemm<format::q8>(pool, x, n, w, y);
  else
    gemm<format::f32>(pool, x, n, w, y);
}

}  // namespace troupe::engine::cpu::detail
