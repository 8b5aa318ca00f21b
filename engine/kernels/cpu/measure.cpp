// Machine probes reported beside every performance figure: main-memory read bandwidth, the fp32
// FMA peak and the bf16 dot-product peak, measured with all pool threads on the active SIMD path.
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <vector>

#include <sys/mman.h>

#include "engine/kernels/cpu/kernels_impl.hpp"

namespace troupe::engine::cpu {

double measure_memory_bandwidth(thread_pool& pool, size_t bytes, int reps) {
  const detail::path_table& simd = detail::table_for(detail::best_level());
  bytes = bytes / 4096 * 4096;
  if (bytes == 0) return 0;
  std::unique_ptr<float, decltype(&std::free)> buf(static_cast<float*>(std::aligned_alloc(size_t(2) << 20, (bytes + (size_t(2) << 20) - 1) / (size_t(2) << 20) * (size_t(2) << 20))),
                                                   &std::free);
  if (!buf) return 0;
  // Huge pages where the kernel allows: the probe should see the best read the machine offers
  // (the weights are read from huge pages too with --no-mmap).
  (void)madvise(buf.get(), bytes, MADV_HUGEPAGE);
  const int64_t count = int64_t(bytes / sizeof(float));
  const int64_t grain = 4096 / int64_t(sizeof(float));
  // First touch from the thread that will read each part, so every page is mapped before timing.
  // Non-zero contents: a hypervisor or kernel may share or compress zero pages, which would then
  // read from cache and overstate the bandwidth.
  pool.parallel_for(count, grain, [&](int, int64_t b, int64_t e) {
    float* p = buf.get();
    for (int64_t i = b; i < e; ++i) p[i] = float(i & 1023) + 1.0f;
  });
  double best = 0;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(count, grain, [&](int, int64_t b, int64_t e) {
      sink = sink + simd.read_stream(buf.get() + b, e - b);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(bytes) / s / 1e9);
  }
  return best;
}

double measure_read_bandwidth(thread_pool& pool, std::span<const std::span<const std::byte>> regions,
                              int reps) {
  const detail::path_table& simd = detail::table_for(detail::best_level());
  // The regions cut into pieces of up to 1 MiB that the threads claim in turn (as matmul's row
  // chunks are claimed), all in one parallel region per pass.
  struct piece {
    const float* p;
    int64_t count;
  };
  constexpr size_t piece_bytes = size_t(1) << 20, unit = 512;
  std::vector<piece> pieces;
  size_t bytes = 0;
  for (const auto& r : regions) {
    const auto begin = (reinterpret_cast<uintptr_t>(r.data()) + 63) & ~uintptr_t(63);
    const auto end = reinterpret_cast<uintptr_t>(r.data()) + r.size();
    for (uintptr_t p = begin; p + unit <= end; p += piece_bytes) {
      const size_t len = std::min<size_t>(piece_bytes, (end - p) / unit * unit);
      pieces.push_back({reinterpret_cast<const float*>(p), int64_t(len / sizeof(float))});
      bytes += len;
    }
  }
  if (pieces.empty()) return 0;
  double best = 0;
  volatile double sink = 0;
  for (int r = 0; r < reps; ++r) {
    std::atomic<size_t> next{0};
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), 1, [&](int, int64_t, int64_t) {
      double s = 0;
      for (size_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < pieces.size();)
        s += simd.read_stream(pieces[i].p, pieces[i].count);
      sink = sink + s;
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(bytes) / s / 1e9);
  }
  return best;
}

namespace {

// GFLOP/s of `chains` (independent accumulator chains, `flops` per iteration) on every pool thread.
double measure_chains(thread_pool& pool, float (*chains)(int64_t), int flops) {
  // Calibrate on one thread so the timed pass lasts ~0.2 s.
  int64_t iterations = 1 << 16;
  volatile float sink = 0;
  for (;;) {
    const auto start = std::chrono::steady_clock::now();
    sink = sink + chains(iterations);
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (s > 0.02) {
      iterations = int64_t(double(iterations) * 0.2 / s);
      break;
    }
    // Bounded: a path whose loop runs faster than expected must not grow `iterations` forever
    // (it overflowed and spun here before this cap).
    if (iterations > (int64_t(1) << 36)) break;
    iterations *= 4;
  }
  double best = 0;
  for (int r = 0; r < 2; ++r) {
    const auto start = std::chrono::steady_clock::now();
    pool.parallel_for(pool.size(), 1, [&](int, int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) sink = sink + chains(iterations);
    });
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    best = std::max(best, double(pool.size()) * double(iterations) * flops / s / 1e9);
  }
  return best;
}

}  // namespace

double measure_fma_peak(thread_pool& pool) {
  const detail::path_table& simd = detail::table_for(detail::best_level());
  return measure_chains(pool, simd.fma_chains, simd.fma_flops_per_iteration);
}

double measure_bf16_dot_peak(thread_pool& pool) {
  const detail::path_table& simd = detail::table_for(detail::best_level());
  if (simd.bf16_dot_chains == nullptr) return 0;
  return measure_chains(pool, simd.bf16_dot_chains, simd.bf16_dot_flops_per_iteration);
}

}  // namespace troupe::engine::cpu
