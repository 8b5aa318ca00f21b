// Tests for the element-wise kernels against direct double-precision formulas: RMSNorm, both
// rotary layouts, SwiGLU gating, residual add and embedding-row dequantization.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <numeric>
#include <algorithm>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"
#include "tests/engine/kernels/kernel_test_util.hpp"

namespace troupe::engine::cpu {
namespace {

using testing::random_floats;

TEST(RmsNorm, MatchesFormulaPerRow) {
  const int64_t n = 3, dim = 4096;
  std::vector<float> x = random_floats(size_t(n * dim), 1, 300.f);
  const std::vector<float> gamma = random_floats(size_t(dim), 2);
  std::vector<float> out(x.size());
  rms_norm(x.data(), gamma.data(), n, dim, 1e-5f, out.data());
  for (int64_t t = 0; t < n; ++t) {
    double ss = 0;
    for (int64_t i = 0; i < dim; ++i) ss += double(x[size_t(t * dim + i)]) * x[size_t(t * dim + i)];
    const double inv = 1.0 / std::sqrt(ss / dim + 1e-5);
    for (int64_t i = 0; i < dim; ++i) {
      const double want = double(x[size_t(t * dim + i)]) * inv * gamma[size_t(i)];
      ASSERT_NEAR(out[size_t(t * dim + i)], want, 1e-5 * (std::fabs(want) + 1e-3)) << t << "," << i;
    }
  }
}

TEST(RmsNorm, WorksInPlaceAndUsesEps) {
  std::vector<float> x(8, 0.f);
  const std::vector<float> gamma(8, 2.f);
  x[0] = 1e-3f;
  rms_norm(x.data(), gamma.data(), 1, 8, 1.f, x.data());  // eps dominates the tiny mean square
  EXPECT_NEAR(x[0], 1e-3 * 2 / std::sqrt(1e-6 / 8 + 1.0), 1e-9);
  EXPECT_EQ(x[1], 0.f);
}

void check_rope(bool interleaved) {
  const int64_t n = 4, heads = 3, head_dim = 64, half = head_dim / 2;
  const std::vector<int32_t> pos = {0, 1, 517, 32767};
  std::vector<float> inv_freq(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) inv_freq[size_t(i)] = float(std::pow(10000.0, -2.0 * i / head_dim));
  const std::vector<float> x0 = random_floats(size_t(n * heads * head_dim), 5);
  std::vector<float> x = x0;
  rope(x.data(), n, heads, head_dim, pos, inv_freq, interleaved);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t h = 0; h < heads; ++h)
      for (int64_t i = 0; i < half; ++i) {
        const size_t base = size_t((t * heads + h) * head_dim);
        const size_t a = base + size_t(interleaved ? 2 * i : i);
        const size_t b = base + size_t(interleaved ? 2 * i + 1 : i + half);
        const double angle = double(pos[size_t(t)]) * double(inv_freq[size_t(i)]);
        const double want_a = x0[a] * std::cos(angle) - x0[b] * std::sin(angle);
        const double want_b = x0[a] * std::sin(angle) + x0[b] * std::cos(angle);
        ASSERT_NEAR(x[a], want_a, 1e-5) << "t " << t << " h " << h << " i " << i;
        ASSERT_NEAR(x[b], want_b, 1e-5) << "t " << t << " h " << h << " i " << i;
      }
}

TEST(Rope, HalfSplitLayoutMatchesFormula) { check_rope(false); }
TEST(Rope, InterleavedLayoutMatchesFormula) { check_rope(true); }

TEST(Rope, PositionZeroIsIdentityAndLayoutsDiffer) {
  const std::vector<float> inv_freq = {1.f, 0.5f};
  std::vector<float> a = {1, 2, 3, 4}, b = a, c = a;
  const std::vector<int32_t> zero = {0}, one = {1};
  rope(a.data(), 1, 1, 4, zero, inv_freq, false);
  EXPECT_EQ(a, (std::vector<float>{1, 2, 3, 4}));
  rope(b.data(), 1, 1, 4, one, inv_freq, false);
  rope(c.data(), 1, 1, 4, one, inv_freq, true);
  EXPECT_NE(b, c);
  // Half-split pairs (0, 2) at angle 1: x0' = 1 cos 1 - 3 sin 1.
  EXPECT_NEAR(b[0], std::cos(1.0) - 3 * std::sin(1.0), 1e-6);
  // Interleaved pairs (0, 1) at angle 1: x0' = 1 cos 1 - 2 sin 1.
  EXPECT_NEAR(c[0], std::cos(1.0) - 2 * std::sin(1.0), 1e-6);
}

TEST(SiluMul, MatchesFormulaOnEveryPath) {
  // Gates over +-12 (past where e^-g overflows nothing but still saturates), an odd count so the
  // vector paths have a tail, and the extremes.
  std::vector<float> gate = random_floats(1001, 7, 12.f);
  const std::vector<float> up = random_floats(1001, 8);
  gate[0] = -100.f, gate[1] = 100.f, gate[2] = 0.f, gate[3] = -0.f;
  for (detail::simd_level level : {detail::simd_level::scalar, detail::simd_level::avx2, detail::simd_level::avx512}) {
    if (!detail::level_supported(level)) continue;
    std::vector<float> out(gate.size(), std::numeric_limits<float>::quiet_NaN());
    detail::table_for(level).silu_mul(gate.data(), up.data(), int64_t(gate.size()), out.data());
    for (size_t i = 0; i < gate.size(); ++i) {
      const double g = gate[i];
      const double want = g / (1 + std::exp(-g)) * up[i];
      ASSERT_NEAR(out[i], want, 1e-6 * std::fabs(want) + 1e-30) << testing::level_name(level) << " " << i;
    }
  }
  // In place, through the public entry point.
  std::vector<float> in_place = gate;
  silu_mul(in_place.data(), up.data(), int64_t(gate.size()), in_place.data());
  for (size_t i = 0; i < gate.size(); ++i)
    ASSERT_NEAR(in_place[i], gate[i] / (1 + std::exp(-double(gate[i]))) * up[i], 1e-6 * std::fabs(gate[i] * up[i]) + 1e-30);
}

TEST(Add, AccumulatesInPlace) {
  std::vector<float> acc = {1, 2, 3}, x = {0.5f, -2, 10};
  add(acc.data(), x.data(), 3);
  EXPECT_EQ(acc, (std::vector<float>{1.5f, 0, 13}));
}

TEST(DequantizeRow, MatchesStoredValuesForEveryDtype) {
  for (dtype t : {dtype::f32, dtype::f16, dtype::bf16, dtype::q8_0}) {
    const auto w = testing::make_weights(t, 5, 96, 11);
    std::vector<float> out(96);
    for (int64_t r : {0, 3, 4}) {
      dequantize_row(w.view, r, out.data());
      for (int64_t k = 0; k < 96; ++k)
        ASSERT_EQ(out[size_t(k)], w.values[size_t(r * 96 + k)]) << dtype_name(t) << " row " << r << " col " << k;
    }
  }
}

}  // namespace
}  // namespace troupe::engine::cpu

namespace troupe::engine::cpu {
namespace {

// Every SIMD path's softmax against a double-precision one, on lengths around the vector width and
// on inputs whose exponent would underflow.
TEST(Softmax, EveryPathMatchesDoublePrecision) {
  std::vector<const detail::path_table*> tables = {&detail::scalar_table()};
  if (detail::best_level() != detail::simd_level::scalar) tables.push_back(&detail::avx2_table());
  if (detail::best_level() == detail::simd_level::avx512) tables.push_back(&detail::avx512_table());
  for (const detail::path_table* t : tables)
    for (int64_t n : {1, 7, 16, 17, 100, 513}) {
      std::vector<float> s(static_cast<size_t>(n));
      for (int64_t i = 0; i < n; ++i) s[size_t(i)] = float((i * 37) % 23) * 1.7f - 20.0f - (i == 3 ? 200.0f : 0.0f);
      std::vector<double> want(s.begin(), s.end());
      const double mx = *std::max_element(want.begin(), want.end());
      double sum = 0;
      for (double& v : want) sum += (v = std::exp(v - mx));
      t->softmax(s.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_NEAR(s[size_t(i)], want[size_t(i)] / sum, 1e-6 * (want[size_t(i)] / sum) + 1e-12) << "n=" << n << " i=" << i;
    }
}

// The last vector of a row must not read past it: rows that end just before an unmapped page
// (a guard page here) are computed without a fault on every path. The AVX-512 path once loaded a
// whole vector there unmasked.
TEST(Softmax, NeverReadsPastTheRow) {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  auto* base = static_cast<char*>(::mmap(nullptr, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(base, MAP_FAILED);
  ASSERT_EQ(::mprotect(base + page, page, PROT_NONE), 0);
  std::vector<const detail::path_table*> tables = {&detail::scalar_table()};
  if (detail::best_level() != detail::simd_level::scalar) tables.push_back(&detail::avx2_table());
  if (detail::best_level() == detail::simd_level::avx512) tables.push_back(&detail::avx512_table());
  for (const detail::path_table* t : tables)
    for (int64_t n = 1; n <= 33; ++n) {
      float* s = reinterpret_cast<float*>(base + page) - n;  // the row ends at the guard page
      for (int64_t i = 0; i < n; ++i) s[i] = float(i % 5);
      t->softmax(s, n);
      float sum = 0;
      for (int64_t i = 0; i < n; ++i) sum += s[i];
      EXPECT_NEAR(sum, 1.0f, 1e-5f) << "n=" << n;
    }
  ::munmap(base, 2 * page);
}

std::vector<const detail::path_table*> every_path() {
  std::vector<const detail::path_table*> tables = {&detail::scalar_table()};
  if (detail::best_level() != detail::simd_level::scalar) tables.push_back(&detail::avx2_table());
  if (detail::best_level() == detail::simd_level::avx512) tables.push_back(&detail::avx512_table());
  return tables;
}

// Every path's log-sum-exp (the sampler's log-softmax normalizer) against a double-precision one:
// lengths around the vector width and the 1,024-value chunks, a 150k vocab with a wide range, and
// -inf entries (masked tokens), which count as zero probability.
TEST(LogSumExp, EveryPathMatchesDoublePrecision) {
  for (const detail::path_table* t : every_path())
    for (int64_t n : {1, 15, 16, 17, 1023, 1024, 1025, 150000}) {
      std::vector<float> x(static_cast<size_t>(n));
      uint32_t state = uint32_t(n);
      for (float& v : x) {
        state = state * 1664525u + 1013904223u;
        v = float(int(state >> 8) % 20001 - 10000) * 2e-3f;  // [-20, 20]
      }
      if (n > 3) x[2] = -std::numeric_limits<float>::infinity();
      double mx = -std::numeric_limits<double>::infinity();
      for (float v : x) mx = std::max(mx, double(v));
      double sum = 0;
      for (float v : x) sum += std::exp(double(v) - mx);
      const double want = mx + std::log(sum);
      EXPECT_NEAR(t->log_sum_exp(x.data(), n), want, 2e-6) << "n=" << n;
    }
}

// No distribution, no number: NaN or +inf anywhere, or every value -inf, gives NaN on every path
// (the sampler then falls back to greedy); -inf beside finite values does not.
TEST(LogSumExp, NonFiniteLogitsGiveNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  for (const detail::path_table* t : every_path())
    for (int64_t n : {1, 5, 16, 40}) {
      for (int64_t at : {int64_t(0), n - 1}) {
        for (float bad : {nan, inf}) {
          std::vector<float> x(static_cast<size_t>(n), 1.5f);
          x[size_t(at)] = bad;
          EXPECT_TRUE(std::isnan(t->log_sum_exp(x.data(), n))) << "n=" << n << " at " << at << " value " << bad;
        }
      }
      std::vector<float> all(static_cast<size_t>(n), -inf);
      EXPECT_TRUE(std::isnan(t->log_sum_exp(all.data(), n))) << "all -inf, n=" << n;
      all[size_t(n / 2)] = 0.5f;
      EXPECT_NEAR(t->log_sum_exp(all.data(), n), 0.5, 1e-6) << "one finite value, n=" << n;
    }
  EXPECT_TRUE(std::isnan(log_sum_exp({})));
}

}  // namespace
}  // namespace troupe::engine::cpu
