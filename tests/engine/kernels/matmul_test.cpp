// matmul on every SIMD path the CPU supports, for every weight dtype, against a double-precision
// loop over the exact stored weights; both the row-dot and the GEMM routes, odd shapes and tails.
// bf16 weights are defined to multiply x rounded to bf16 (kernels_impl.hpp), so their reference
// rounds x the same way and then allows only f32 summation error.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>

#include "engine/kernels/cpu/kernels_impl.hpp"
#include "tests/engine/kernels/kernel_test_util.hpp"

namespace troupe::engine::cpu {
namespace {

using detail::simd_level;
using testing::level_name;
using testing::make_weights;
using testing::random_floats;
using testing::test_weights;

// Relative tolerance against sum |w * x| for each path's arithmetic.
double tolerance(dtype t) {
  switch (t) {
    case dtype::f32:
    case dtype::f16:
    case dtype::bf16: return 1e-5;
    case dtype::q8_0: return 1e-2;   // x quantized to 8 bits per 32-block
  }
  return 0;
}

struct reference {
  std::vector<double> y;    // [n, rows]
  std::vector<double> mag;  // sum |w * x| per output
};

reference compute_reference(const test_weights& w, const std::vector<float>& x, int64_t n,
                            const std::vector<float>* bias) {
  const int64_t rows = w.view.rows, cols = w.view.cols;
  reference ref;
  ref.y.assign(size_t(n * rows), 0);
  ref.mag.assign(size_t(n * rows), 0);
  for (int64_t t = 0; t < n; ++t)
    for (int64_t r = 0; r < rows; ++r) {
      double s = 0, m = 0;
      for (int64_t k = 0; k < cols; ++k) {
        const float xk = x[size_t(t * cols + k)];
        const double xv = w.view.type == dtype::bf16 ? double(bf16_to_f32(f32_to_bf16(xk))) : double(xk);
        const double p = double(w.values[size_t(r * cols + k)]) * xv;
        s += p;
        m += std::fabs(p);
      }
      if (bias) s += (*bias)[size_t(r)], m += std::fabs((*bias)[size_t(r)]);
      ref.y[size_t(t * rows + r)] = s;
      ref.mag[size_t(t * rows + r)] = m;
    }
  return ref;
}

std::vector<simd_level> supported_levels() {
  std::vector<simd_level> levels;
  for (simd_level l : {simd_level::scalar, simd_level::avx2, simd_level::avx512})
    if (detail::level_supported(l)) levels.push_back(l);
  return levels;
}

void expect_close(const reference& ref, const std::vector<float>& y, double tol,
                  const std::string& what) {
  int failures = 0;
  for (size_t i = 0; i < y.size() && failures < 5; ++i) {
    const double err = std::fabs(double(y[i]) - ref.y[i]);
    if (!(err <= tol * ref.mag[i] + 1e-30)) {
      ADD_FAILURE() << what << " output " << i << ": got " << y[i] << " want " << ref.y[i]
                    << " (err " << err << ", allowed " << tol * ref.mag[i] << ")";
      ++failures;
    }
  }
}

struct shape {
  int64_t rows, cols;
};

void run_case(thread_pool& pool, dtype type, shape s, int64_t n, uint32_t seed, bool with_bias) {
  const test_weights w = make_weights(type, s.rows, s.cols, seed);
  const std::vector<float> x = random_floats(size_t(n * s.cols), seed + 1);
  const std::vector<float> bias = random_floats(size_t(s.rows), seed + 2);
  const reference ref = compute_reference(w, x, n, with_bias ? &bias : nullptr);
  // The default route for n, and both explicit routes so each is checked at every n.
  const int64_t routes[] = {detail::default_gemm_min_n, detail::bf16_gemm_min_n,
                            std::numeric_limits<int64_t>::max(), 1};
  for (simd_level level : supported_levels())
    for (int64_t gemm_min_n : routes) {
      if (gemm_min_n == 1 && n > 64) continue;  // the default route already is GEMM
      if (gemm_min_n > 1'000'000 && n > 64) continue;
      std::vector<float> y(size_t(n * s.rows), std::numeric_limits<float>::quiet_NaN());
      detail::matmul_on(level, pool, x.data(), n, w.view, with_bias ? bias.data() : nullptr,
                        y.data(), gemm_min_n);
      expect_close(ref, y, tolerance(type),
                   std::string(dtype_name(type)) + " " + level_name(level) + " n=" +
                       std::to_string(n) + " rows=" + std::to_string(s.rows) +
                       " cols=" + std::to_string(s.cols) + " gemm_min_n=" + std::to_string(gemm_min_n));
    }
}

class MatmulDtype : public ::testing::TestWithParam<dtype> {};

TEST_P(MatmulDtype, MatchesDoubleReferenceOnEveryPath) {
  thread_pool pool(2);
  const dtype type = GetParam();
  uint32_t seed = 100;
  for (int64_t n : {1, 3, 7, 64, 300})
    for (int64_t cols : {64, 96, 4096})
      for (int64_t rows : {1, 17, 256}) {
        if (n == 300 && cols == 4096 && rows == 256) continue;  // covered below, keeps time down
        run_case(pool, type, {rows, cols}, n, seed++, false);
      }
  run_case(pool, type, {256, 4096}, 300, seed++, true);
}

TEST(Matmul, HandlesColumnTailsAndBias) {
  // q8_0 rows are whole 32-blocks, so only the per-element types have column tails.
  thread_pool pool(3);
  uint32_t seed = 900;
  for (dtype type : {dtype::f32, dtype::f16, dtype::bf16})
    for (int64_t cols : {1, 7, 33, 100, 1000})
      for (int64_t n : {1, 2, 5, 20}) run_case(pool, type, {23, cols}, n, seed++, true);
}

TEST_P(MatmulDtype, GemmCrossesRowAndDepthBlocks) {
  // Several weight-row blocks per thread (the next block's weights are packed while the current
  // one computes), a partial last row block, depth blocks with a tail that is not a multiple of
  // 16 (per-element types), and a partial last token strip; on one and on three threads.
  const dtype type = GetParam();
  const int64_t cols = type == dtype::q8_0 ? 1120 : 1101;
  uint32_t seed = 500;
  for (int threads : {1, 3}) {
    thread_pool pool(threads);
    run_case(pool, type, {300, cols}, 37, seed++, false);
  }
}

TEST_P(MatmulDtype, PublicMatmulOnShortRows) {
  // One 32-column block, an odd block count (q8_0 pair loop tail) and the public matmul().
  thread_pool pool(2);
  const dtype type = GetParam();
  for (int64_t cols : {32, 160}) {
    const test_weights w = make_weights(type, 9, cols, 7);
    const std::vector<float> x = random_floats(size_t(2 * cols), 8);
    const reference ref = compute_reference(w, x, 2, nullptr);
    std::vector<float> y(size_t(2 * 9));
    matmul(pool, x.data(), 2, w.view, nullptr, y.data());
    expect_close(ref, y, tolerance(type), "public matmul");
  }
}

INSTANTIATE_TEST_SUITE_P(AllDtypes, MatmulDtype,
                         ::testing::Values(dtype::f32, dtype::f16, dtype::bf16, dtype::q8_0),
                         [](const auto& info) { return std::string(dtype_name(info.param)); });

TEST(Matmul, SimdPathNamesTheBestLevel) {
  const std::string path = simd_path();
  switch (detail::best_level()) {
    case simd_level::avx512: EXPECT_EQ(path, "avx512-bf16-vnni"); break;
    case simd_level::avx2: EXPECT_EQ(path, "avx2"); break;
    case simd_level::scalar: EXPECT_EQ(path, "scalar"); break;
  }
}

TEST(Matmul, Q8ActivationOutliersStayWithinTolerance) {
  // One large activation per block dominates the 8-bit scale: the small ones lose precision but
  // the error must stay within 1% of sum |w x|.
  thread_pool pool(2);
  const test_weights w = make_weights(dtype::q8_0, 8, 256, 3);
  std::vector<float> x = random_floats(256, 4, 0.01f);
  for (size_t i = 0; i < x.size(); i += 32) x[i] = 50.f;
  const reference ref = compute_reference(w, x, 1, nullptr);
  for (simd_level level : supported_levels()) {
    std::vector<float> y(8);
    detail::matmul_on(level, pool, x.data(), 1, w.view, nullptr, y.data(), detail::default_gemm_min_n);
    expect_close(ref, y, 1e-2, std::string("q8 outliers ") + level_name(level));
  }
}

TEST(Matmul, Bf16BatchKernelBothLayouts) {
  // The bf16 batch kernel (the GEMM route off) in both layouts: k-lanes below 16 tokens and for
  // odd column counts, tokens in lanes from 16 (1-9 vectors of 16 tokens, in groups of 3, 2 and 1,
  // partial last vector), with 8-row blocks and single-row tails.
  thread_pool pool(2);
  uint32_t seed = 700;
  for (int64_t n : {15, 16, 17, 33, 48, 63, 64, 65, 112, 130})
    for (int64_t cols : {2, 64, 130, 131})
      for (int64_t rows : {5, 23, 70}) {
        const test_weights w = make_weights(dtype::bf16, rows, cols, seed++);
        const std::vector<float> x = random_floats(size_t(n * cols), seed++);
        const reference ref = compute_reference(w, x, n, nullptr);
        for (simd_level level : supported_levels()) {
          std::vector<float> y(size_t(n * rows), std::numeric_limits<float>::quiet_NaN());
          detail::matmul_on(level, pool, x.data(), n, w.view, nullptr, y.data(), std::numeric_limits<int64_t>::max());
          expect_close(ref, y, tolerance(dtype::bf16),
                       std::string("bf16 batch ") + level_name(level) + " n=" + std::to_string(n) +
                           " rows=" + std::to_string(rows) + " cols=" + std::to_string(cols));
        }
      }
}

TEST(Matmul, Q8GemmQuantizesXAsTheRowPath) {
  // On AVX-512 the q8_0 GEMM quantizes x per 32-block exactly as the row path does, so the two
  // routes differ only in the order of their f32 sums: 1e-5 of sum |w x|, not the 1e-2 that x's
  // quantization allows against exact x. 4160 columns: two depth blocks of the GEMM (2048 columns
  // each) and a third with an odd block count (2); 70 rows: a partial panel; 29 tokens: a partial
  // strip and a partial 6-token half.
  if (!detail::level_supported(simd_level::avx512)) GTEST_SKIP() << "no AVX-512 path on this CPU";
  thread_pool pool(2);
  const test_weights w = make_weights(dtype::q8_0, 70, 4160, 21);
  const int64_t n = 29;
  const std::vector<float> x = random_floats(size_t(n * 4160), 22);
  const reference ref = compute_reference(w, x, n, nullptr);
  std::vector<float> rows(size_t(n * 70)), gemm(rows.size());
  detail::matmul_on(simd_level::avx512, pool, x.data(), n, w.view, nullptr, rows.data(),
                    std::numeric_limits<int64_t>::max());
  detail::matmul_on(simd_level::avx512, pool, x.data(), n, w.view, nullptr, gemm.data(), 1);
  reference rows_ref = ref;
  for (size_t i = 0; i < rows.size(); ++i) rows_ref.y[i] = rows[i];
  expect_close(rows_ref, gemm, 1e-5, "q8 gemm against q8 rows");
}

TEST(Matmul, Q8QuantizationIsTheSameOnEveryPath) {
  // Every path's quantize_q8 gives the portable arithmetic's quants, scales and corrections bit
  // for bit: an all-zero block, one whose values round half-way (x / d = k + 0.5 exactly, where
  // nearbyint rounds to even), one of a single outlier, and random ones of mixed magnitude.
  const int64_t blocks = 67;
  std::vector<float> x = random_floats(size_t(blocks * q8_0_block), 31);
  for (int j = 0; j < q8_0_block; ++j) x[size_t(j)] = 0.f;
  for (int j = 0; j < q8_0_block; ++j) x[size_t(q8_0_block + j)] = j == 0 ? 127.f : float(j % 7) - 2.5f;
  for (int j = 0; j < q8_0_block; ++j) x[size_t(2 * q8_0_block + j)] = j == 5 ? -1e6f : 1e-3f * float(j);
  for (int64_t b = 3; b < blocks; ++b)
    for (int j = 0; j < q8_0_block; ++j) x[size_t(b * q8_0_block + j)] *= std::ldexp(1.f, int(b % 11) - 5);
  std::vector<int8_t> want_q(x.size());
  std::vector<float> want_scale(static_cast<size_t>(blocks));
  std::vector<int32_t> want_corr(x.size() / 4);
  detail::quantize_q8_portable(x.data(), blocks, want_q.data(), want_scale.data(), want_corr.data());
  EXPECT_EQ(want_q[size_t(q8_0_block + 1)], -2);  // -1.5 rounds to even
  EXPECT_EQ(want_q[size_t(q8_0_block + 4)], 2);   // 1.5 rounds to even
  for (simd_level level : supported_levels()) {
    const detail::path_table& table = detail::table_for(level);
    std::vector<int8_t> q(x.size());
    std::vector<float> scale(static_cast<size_t>(blocks));
    std::vector<int32_t> corr(x.size() / 4, 12345);
    table.quantize_q8(x.data(), blocks, q.data(), scale.data(), table.needs_q8_corr ? corr.data() : nullptr);
    EXPECT_EQ(q, want_q) << level_name(level);
    EXPECT_EQ(scale, want_scale) << level_name(level);
    if (table.needs_q8_corr) {
      EXPECT_EQ(corr, want_corr) << level_name(level);
    }
  }
}

TEST(Matmul, ManyTargetsMatchSeparateCalls) {
  // matmul_many gives each target exactly what its own matmul call gives: one token over q/k/v-like
  // targets of one type (one pass: x prepared once, every target's rows in one parallel region),
  // with and without bias; mixed types and several tokens (matmul per target).
  thread_pool pool(2);
  for (dtype type : {dtype::f32, dtype::bf16, dtype::q8_0}) {
    const int64_t cols = 320;
    const test_weights q = make_weights(type, 300, cols, 41), k = make_weights(type, 24, cols, 42),
                       v = make_weights(type, 17, cols, 43), other = make_weights(dtype::f16, 40, cols, 44);
    const std::vector<float> bias = random_floats(24, 45);
    for (int64_t n : {1, 3, 70}) {
      const std::vector<float> x = random_floats(size_t(n * cols), 46);
      for (bool mixed : {false, true}) {
        const test_weights& third = mixed ? other : v;
        std::vector<float> yq(size_t(n * 300)), yk(size_t(n * 24)), yv(size_t(n * third.view.rows));
        const matmul_target targets[] = {{&q.view, nullptr, yq.data()}, {&k.view, bias.data(), yk.data()},
                                         {&third.view, nullptr, yv.data()}};
        matmul_many(pool, x.data(), n, targets);
        std::vector<float> wq(yq.size()), wk(yk.size()), wv(yv.size());
        matmul(pool, x.data(), n, q.view, nullptr, wq.data());
        matmul(pool, x.data(), n, k.view, bias.data(), wk.data());
        matmul(pool, x.data(), n, third.view, nullptr, wv.data());
        const std::string what = std::string(dtype_name(type)) + " n=" + std::to_string(n) + (mixed ? " mixed" : "");
        EXPECT_EQ(yq, wq) << what;
        EXPECT_EQ(yk, wk) << what;
        EXPECT_EQ(yv, wv) << what;
      }
    }
  }
}

}  // namespace
}  // namespace troupe::engine::cpu
