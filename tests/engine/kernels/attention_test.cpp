// Causal grouped-query attention against a double-precision reference: decode and prefill
// routes, GQA head mapping, positions starting past 0, and cache rows past the last position
// never read.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "engine/kernels/cpu/kernels.hpp"
#include "tests/engine/kernels/kernel_test_util.hpp"

namespace troupe::engine::cpu {
namespace {

struct attention_case {
  int64_t n, first_pos, n_heads, n_kv_heads, head_dim;
};

void check(thread_pool& pool, const attention_case& c) {
  const int64_t kv_len = c.first_pos + c.n + 5;  // rows past the last position hold NaN
  const int64_t q_stride = c.n_heads * c.head_dim, kv_stride = c.n_kv_heads * c.head_dim;
  const std::vector<float> q = testing::random_floats(size_t(c.n * q_stride), 21, 1.5f);
  std::vector<float> k = testing::random_floats(size_t(kv_len * kv_stride), 22, 1.5f);
  std::vector<float> v = testing::random_floats(size_t(kv_len * kv_stride), 23);
  const int64_t used = c.first_pos + c.n;
  for (size_t i = size_t(used * kv_stride); i < k.size(); ++i)
    k[i] = v[i] = std::numeric_limits<float>::quiet_NaN();
  std::vector<int32_t> pos(size_t(c.n));
  for (int64_t i = 0; i < c.n; ++i) pos[size_t(i)] = int32_t(c.first_pos + i);
  std::vector<float> out(q.size(), std::numeric_limits<float>::quiet_NaN());
  attention(pool, q.data(), c.n, pos, k.data(), v.data(), kv_len, c.n_heads, c.n_kv_heads,
            c.head_dim, out.data());

  const int64_t group = c.n_heads / c.n_kv_heads;
  const double scale = 1.0 / std::sqrt(double(c.head_dim));
  for (int64_t t = 0; t < c.n; ++t)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const int64_t g = h / group, len = pos[size_t(t)] + 1;
      std::vector<double> s(static_cast<size_t>(len));
      double mx = -1e300;
      for (int64_t j = 0; j < len; ++j) {
        double d = 0;
        for (int64_t e = 0; e < c.head_dim; ++e)
          d += double(q[size_t(t * q_stride + h * c.head_dim + e)]) * k[size_t(j * kv_stride + g * c.head_dim + e)];
        s[size_t(j)] = d * scale;
        mx = std::max(mx, s[size_t(j)]);
      }
      double sum = 0;
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int64_t e = 0; e < c.head_dim; ++e) {
        double want = 0;
        for (int64_t j = 0; j < len; ++j) want += s[size_t(j)] / sum * v[size_t(j * kv_stride + g * c.head_dim + e)];
        const float got = out[size_t(t * q_stride + h * c.head_dim + e)];
        ASSERT_NEAR(got, want, 2e-5) << "n " << c.n << " token " << t << " head " << h << " dim " << e;
      }
    }
}

TEST(Attention, DecodeSingleToken) {
  thread_pool pool(2);
  check(pool, {1, 0, 4, 4, 64});
  check(pool, {1, 37, 8, 2, 64});
  check(pool, {1, 300, 32, 4, 64});
}

TEST(Attention, FewTokensAfterCachedPrefix) {
  thread_pool pool(3);
  check(pool, {5, 10, 8, 2, 64});
  check(pool, {7, 0, 6, 3, 48});  // head_dim not a multiple of the vector width
  check(pool, {15, 3, 4, 1, 80});
}

TEST(Attention, PrefillBlocksWithGqa) {
  thread_pool pool(2);
  check(pool, {16, 0, 4, 2, 64});
  check(pool, {70, 20, 8, 2, 64});   // blocks of 32 with a partial last block, start at pos 20
  check(pool, {130, 0, 4, 4, 32});   // plain multi-head
}

}  // namespace
}  // namespace troupe::engine::cpu
