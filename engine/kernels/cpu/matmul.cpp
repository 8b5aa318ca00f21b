// matmul dispatch: picks the SIMD path once, prepares x for it (bf16 rounding, q8 quantization),
// and routes by weight type and token count: row dot products over the pool, the bf16 batch
// kernel, or GEMM for many tokens.
#include <cblas.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cassert>
#include <cmath>
#include <mutex>
#include <vector>

#include "engine/kernels/cpu/cpu_features.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu::detail {

simd_level best_level() {
  static const simd_level level = [] {
    const cpu_features& f = detect_cpu_features();
    if (f.avx512 && f.avx512_bf16 && f.avx512_vnni && f.avx2_fma) return simd_level::avx512;
    if (f.avx2_fma) return simd_level::avx2;
    return simd_level::scalar;
  }();
  return level;
}

bool level_supported(simd_level level) { return int(level) <= int(best_level()); }

const path_table& table_for(simd_level level) {
  switch (level) {
    case simd_level::avx512: return avx512_table();
    case simd_level::avx2: return avx2_table();
    case simd_level::scalar: break;
  }
  return scalar_table();
}

namespace {

// Scratch for the prepared activations, owned by the calling (step) thread; workers only read it.
struct prepared_scratch {
  std::vector<uint16_t> bf16;
  std::vector<uint32_t> pairs;
  std::vector<float> rounded;
  std::vector<int8_t> q8;
  std::vector<float> scale;
  std::vector<int32_t> corr;
};

// Elementwise work over [0, count) on the pool, in pieces of at least `grain`, when it is worth a
// parallel region (a prefill's x can be millions of values), inline otherwise.
template <class Fn>
void elementwise(thread_pool& pool, int64_t count, int64_t grain, const Fn& fn) {
  if (count < 2 * grain) {
    fn(int64_t(0), count);
    return;
  }
  pool.parallel_for(count, grain, [&](int, int64_t b, int64_t e) { fn(b, e); });
}

activations prepare(const path_table& table, thread_pool& pool, const float* x, int64_t n,
                    const weight_matrix& w) {
  thread_local prepared_scratch s;
  activations a;
  a.n = n;
  a.cols = w.cols;
  a.f32 = x;
  const int64_t count = n * w.cols;
  if (w.type == dtype::bf16 && table.round_bf16 != nullptr) {
    // x in bf16 starts at the same address modulo 64 as the weight rows, so that once the
    // one-token kernel has peeled the unaligned head of a row, its loads of x are aligned too
    // (checkpoint tensors are often not 64-byte aligned: safetensors data starts at 8 + header).
    const size_t skew = (reinterpret_cast<uintptr_t>(w.data) & 63) / sizeof(uint16_t);
    s.bf16.resize(size_t(count) + 64);
    uint16_t* out = s.bf16.data() + (skew + 32 - (reinterpret_cast<uintptr_t>(s.bf16.data()) & 63) / 2) % 32;
    elementwise(pool, count, int64_t(1) << 16, [&](int64_t b, int64_t e) { table.round_bf16(x + b, e - b, out + b); });
    a.bf16 = out;
    if (n >= bf16_lanes_min_n && w.cols % 2 == 0 && table.pair_bf16 != nullptr) {
      // The tokens-in-lanes layout: pair k of every token in one row (a transpose of n x cols/2
      // 32-bit pairs), split over the pool for many tokens.
      const int64_t pairs = w.cols / 2, stride = (n + 15) / 16 * 16;
      s.pairs.resize(size_t(pairs * stride));
      uint32_t* dst = s.pairs.data();  // taken here: `s` is thread_local
      elementwise(pool, (pairs + 15) / 16, std::max<int64_t>(1, (int64_t(1) << 16) / (16 * stride)),
                  [&](int64_t b, int64_t e) { table.pair_bf16(out, n, w.cols, b * 16, std::min(pairs, e * 16), stride, dst); });
      a.bf16_pairs = s.pairs.data();
      a.pairs_stride = stride;
    }
  } else if (w.type == dtype::bf16) {
    s.rounded.resize(size_t(count));
    float* out = s.rounded.data();
    elementwise(pool, count, int64_t(1) << 16, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) out[i] = bf16_to_f32(f32_to_bf16(x[i]));
    });
    a.f32 = out;
  } else if (w.type == dtype::q8_0) {
    // Per 32-block symmetric quantization (path_table::quantize_q8), split over the pool for a
    // prefill's x.
    const int64_t blocks = count / q8_0_block;
    s.q8.resize(size_t(count));
    s.scale.resize(size_t(blocks));
    s.corr.resize(table.needs_q8_corr ? size_t(count) / 4 : 0);
    // Pointers taken here: `s` is thread_local, so inside the lambda a worker would name its own.
    int8_t* q = s.q8.data();
    float* scale = s.scale.data();
    int32_t* corr = table.needs_q8_corr ? s.corr.data() : nullptr;
    elementwise(pool, blocks, int64_t(1) << 11, [&](int64_t b, int64_t e) {
      table.quantize_q8(x + b * q8_0_block, e - b, q + b * q8_0_block, scale + b,
                        corr != nullptr ? corr + b * (q8_0_block / 4) : nullptr);
    });
    a.q8_corr = corr;
    a.q8 = s.q8.data();
    a.q8_scale = s.scale.data();
  }
  return a;
}

// One token's row dot products over the rows of every target (all of one type and width), in one
// parallel region. Threads claim chunks of ~1 MiB of rows as they go rather than fixed halves: on
// a shared machine one core is often slower for a while, and a static split makes the other wait.
// (Measured on the 1.1B model's matrices: 1 MiB chunks 38 GB/s, halves 36-38, 128 KiB 35; guided
// self-scheduling, chunks shrinking from 1 MiB to 64 KiB as the work runs out, measured alike.)
// A small matrix (k/v projections, 1 MiB) still gets at least 4 chunks per thread.
void stream_rows(const path_table& table, thread_pool& pool, const activations& a,
                 std::span<const matmul_target> targets) {
  const rows_fn fn = table.rows[int(targets.front().w->type)];
  struct range {
    int64_t first_chunk, chunk;
  };
  std::array<range, 8> ranges{};
  assert(targets.size() <= ranges.size());
  int64_t n_chunks = 0;
  for (size_t i = 0; i < targets.size(); ++i) {
    const weight_matrix& w = *targets[i].w;
    const int64_t chunk = std::clamp<int64_t>(w.rows / (4 * pool.size()), 16,
                                              std::max<int64_t>(16, (int64_t(1) << 20) / int64_t(*row_bytes(w.type, w.cols))));
    ranges[i] = {n_chunks, chunk};
    n_chunks += (w.rows + chunk - 1) / chunk;
  }
  std::atomic<int64_t> next{0};
  pool.parallel_for(pool.size(), 1, [&](int, int64_t, int64_t) {
    for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;) {
      size_t i = targets.size() - 1;
      while (c < ranges[i].first_chunk) --i;
      const weight_matrix& w = *targets[i].w;
      const int64_t r0 = (c - ranges[i].first_chunk) * ranges[i].chunk;
      fn(w, a, 0, r0, std::min(w.rows, r0 + ranges[i].chunk), targets[i].y);
    }
  });
}

// Row dot products. One token: each thread streams its chunks of the weights once (stream_rows).
// Several tokens: rows go in tiles of ~32 KiB that stay in L1/L2 while every token reads them.
void matmul_rows(const path_table& table, thread_pool& pool, const float* x, int64_t n,
                 const weight_matrix& w, float* y) {
  const activations a = prepare(table, pool, x, n, w);
  const rows_fn fn = table.rows[int(w.type)];
  const int64_t rows = w.rows;
  if (n == 1) {
    const matmul_target target{&w, nullptr, y};
    stream_rows(table, pool, a, std::span(&target, 1));
    return;
  }
  const int64_t row_size = int64_t(*row_bytes(w.type, w.cols));
  const int64_t tile = std::max<int64_t>(4, (int64_t(32) << 10) / std::max<int64_t>(1, row_size) / 4 * 4);
  pool.parallel_for(rows, 4, [&](int, int64_t rb, int64_t re) {
    for (int64_t r0 = rb; r0 < re; r0 += tile) {
      const int64_t r1 = std::min(re, r0 + tile);
      for (int64_t t = 0; t < n; ++t) fn(w, a, t, r0, r1, y + t * rows);
    }
  });
}

void add_bias(const weight_matrix& w, const float* bias, int64_t n, float* y) {
  if (bias != nullptr)
    for (int64_t t = 0; t < n; ++t)
      for (int64_t r = 0; r < w.rows; ++r) y[t * w.rows + r] += bias[r];
}

// OpenBLAS is called single-threaded from each pool thread: the pool already owns the cores,
// and two thread pools spinning on two cores would fight.
void blas_single_threaded() {
  static std::once_flag once;
  std::call_once(once, [] { openblas_set_num_threads(1); });
}

// GEMM through OpenBLAS for the AVX2 and scalar paths: f32 weights directly, other types in
// panels of rows converted to f32 in per-thread scratch.
void matmul_blas(const path_table& table, thread_pool& pool, const float* x, int64_t n,
                 const weight_matrix& w, float* y) {
  blas_single_threaded();
  const int64_t rows = w.rows, cols = w.cols;
  if (w.type == dtype::f32) {
    const float* wd = static_cast<const float*>(w.data);
    pool.parallel_for(rows, 16, [&](int, int64_t rb, int64_t re) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(re - rb), int(cols), 1.f, x,
                  int(cols), wd + rb * cols, int(cols), 0.f, y + rb, int(rows));
    });
    return;
  }
  // bf16 weights multiply x rounded to bf16, and q8_0 weights x quantized per 32-block (here
  // dequantized again, so that sgemm multiplies the same values), as on every path.
  if (w.type == dtype::bf16) x = prepare(table, pool, x, n, w).f32;
  thread_local std::vector<float> x_q8;
  if (w.type == dtype::q8_0) {
    const activations a = prepare(table, pool, x, n, w);
    x_q8.resize(size_t(n * cols));
    for (int64_t i = 0; i < n * cols; ++i) x_q8[size_t(i)] = float(a.q8[i]) * a.q8_scale[i / q8_0_block];
    x = x_q8.data();
  }
  constexpr int64_t panel_rows = 128;
  pool.parallel_for(rows, panel_rows, [&](int, int64_t rb, int64_t re) {
    thread_local std::vector<float> panel;
    panel.resize(size_t(panel_rows * cols));
    for (int64_t r0 = rb; r0 < re; r0 += panel_rows) {
      const int64_t pr = std::min(panel_rows, re - r0);
      for (int64_t j = 0; j < pr; ++j) table.convert(w, r0 + j, 0, cols, panel.data() + j * cols);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(n), int(pr), int(cols), 1.f, x,
                  int(cols), panel.data(), int(cols), 0.f, y + r0, int(rows));
    }
  });
}

}  // namespace

void matmul_on(simd_level level, thread_pool& pool, const float* x, int64_t n,
               const weight_matrix& w, const float* bias, float* y, int64_t gemm_min_n) {
  assert(row_bytes(w.type, w.cols).has_value());
  if (n <= 0 || w.rows <= 0) return;
  const path_table& table = table_for(level);
  // bf16 weights on AVX-512: rows for one token, the 6 x 4 batch kernel below gemm_min_n
  // tokens, the bf16 GEMM from there (see kernels_impl.hpp for the crossover).
  const bool bf16_batch = w.type == dtype::bf16 && table.bf16_batch != nullptr;
  if (bf16_batch && n >= 2 && n < gemm_min_n) {
    // Rows in chunks of up to ~1 MiB (whole 6- and 8-row blocks, and at least 4 per thread),
    // claimed as the threads go. 1 MiB streamed ~10% faster than 256 KiB at 32 tokens: each chunk
    // restarts the hardware prefetchers' streams.
    const activations a = prepare(table, pool, x, n, w);
    const int64_t row_size = int64_t(*row_bytes(w.type, w.cols));
    const int64_t chunk = std::max<int64_t>(
        24, std::min((int64_t(1) << 20) / row_size, w.rows / (4 * int64_t(pool.size()))) / 24 * 24);
    const int64_t n_chunks = (w.rows + chunk - 1) / chunk;
    std::atomic<int64_t> next{0};
    pool.parallel_for(pool.size(), 1, [&](int, int64_t, int64_t) {
      for (int64_t c; (c = next.fetch_add(1, std::memory_order_relaxed)) < n_chunks;)
        table.bf16_batch(w, a, c * chunk, std::min(w.rows, (c + 1) * chunk), y);
    });
  } else if (n < gemm_min_n) {
    matmul_rows(table, pool, x, n, w, y);
  } else if (level == simd_level::avx512) {
    gemm_avx512(pool, x, n, w, y);
  } else {
    matmul_blas(table, pool, x, n, w, y);
  }
  add_bias(w, bias, n, y);
}

}  // namespace troupe::engine::cpu::detail

namespace troupe::engine::cpu {

void matmul(thread_pool& pool, const float* x, int64_t n, const weight_matrix& w, const float* bias,
            float* y) {
  const detail::simd_level level = detail::best_level();
  int64_t gemm_min_n = detail::default_gemm_min_n;
  if (level == detail::simd_level::avx512 && w.type == dtype::bf16) gemm_min_n = detail::bf16_gemm_min_n;
  if (level == detail::simd_level::avx512 && w.type == dtype::q8_0) gemm_min_n = detail::q8_gemm_min_n;
  detail::matmul_on(level, pool, x, n, w, bias, y, gemm_min_n);
}

void matmul_many(thread_pool& pool, const float* x, int64_t n, std::span<const matmul_target> targets) {
  if (targets.empty()) return;
  const weight_matrix& w0 = *targets.front().w;
  const bool one_pass = n == 1 && targets.size() <= 8 &&
                        std::all_of(targets.begin(), targets.end(), [&](const matmul_target& t) {
                          return t.w->type == w0.type && t.w->cols == w0.cols && t.w->rows > 0;
                        });
  if (!one_pass) {
    for (const matmul_target& t : targets) matmul(pool, x, n, *t.w, t.bias, t.y);
    return;
  }
  const detail::path_table& table = detail::table_for(detail::best_level());
  const detail::activations a = detail::prepare(table, pool, x, 1, w0);
  detail::stream_rows(table, pool, a, targets);
  for (const matmul_target& t : targets) detail::add_bias(*t.w, t.bias, 1, t.y);
}

const char* simd_path() {
  switch (detail::best_level()) {
    case detail::simd_level::avx512: return "avx512-bf16-vnni";
    case detail::simd_level::avx2: return "avx2";
    case detail::simd_level::scalar: break;
  }
  return "scalar";
}

}  // namespace troupe::engine::cpu
