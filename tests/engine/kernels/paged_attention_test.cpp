// Paged attention (a batch of tokens from several sequences over a block-pool KV cache) against a
// double-precision reference that runs a plain softmax over keys 0..pos, on every SIMD path the CPU
// supports: decode batches of sequences of mixed lengths, causal prefill chunks, mixed batches,
// GQA and MHA, head_dim 64 and 128, block sizes 16 and 8, shuffled block tables, prefix blocks
// shared between sequences, and positions around block boundaries. Every cache row no token may
// read, and one table entry past each sequence's last block, hold NaN, so an out-of-range read
// fails the comparison. Finally the result equals cpu::attention on the same K/V laid out
// contiguously.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <span>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"
#include "engine/kernels/cpu/kernels_impl.hpp"
#include "tests/engine/kernels/kernel_test_util.hpp"

namespace troupe::engine::cpu {
namespace {

using detail::simd_level;
using testing::level_name;

std::vector<simd_level> supported_levels() {
  std::vector<simd_level> levels;
  for (simd_level l : {simd_level::scalar, simd_level::avx2, simd_level::avx512})
    if (detail::level_supported(l)) levels.push_back(l);
  return levels;
}

struct seq_spec {
  int32_t kv_len;                   // positions 0..kv_len-1 are in the cache
  std::vector<int32_t> query_pos;   // positions of this sequence's tokens in the batch
  int share_from = -1;              // reuse the first `shared_blocks` block ids of that sequence
  int64_t shared_blocks = 0;
};

struct paged_case {
  int64_t n_heads, n_kv_heads, head_dim, block_size;
  std::vector<seq_spec> seqs;
  bool shuffle_tokens = true;  // batch order interleaves the sequences
};

std::vector<int32_t> range(int32_t begin, int32_t end) {
  std::vector<int32_t> r(size_t(end - begin));
  std::iota(r.begin(), r.end(), begin);
  return r;
}

// A paged cache with shuffled block ids and the batch of query tokens described by a paged_case.
struct paged_setup {
  int64_t num_blocks = 0;
  std::vector<float> q, k, v;
  std::vector<std::vector<int32_t>> tables;
  std::vector<std::span<const int32_t>> table_spans;
  std::vector<int32_t> pos, token_seq;

  explicit paged_setup(const paged_case& c, uint32_t seed = 7) {
    std::mt19937 rng(seed);
    const int64_t bs = c.block_size, kv_stride = c.n_kv_heads * c.head_dim;
    int64_t fresh = 0;
    for (const seq_spec& s : c.seqs) fresh += (s.kv_len + bs - 1) / bs - s.shared_blocks;
    num_blocks = fresh + 4;  // spare blocks stay NaN; one is every table's trailing entry
    std::vector<int32_t> ids(static_cast<size_t>(num_blocks));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    const int32_t trailing = ids.back();
    size_t next = 0;
    for (const seq_spec& s : c.seqs) {
      std::vector<int32_t> t;
      for (int64_t b = 0; b < s.shared_blocks; ++b) t.push_back(tables[size_t(s.share_from)][size_t(b)]);
      while (int64_t(t.size()) * bs < s.kv_len) t.push_back(ids[next++]);
      t.push_back(trailing);  // past the sequence's last block: must never be read
      tables.push_back(std::move(t));
    }
    for (const auto& t : tables) table_spans.emplace_back(t);

    for (size_t si = 0; si < c.seqs.size(); ++si)
      for (int32_t p : c.seqs[si].query_pos) {
        EXPECT_LT(p, c.seqs[si].kv_len);
        pos.push_back(p);
        token_seq.push_back(int32_t(si));
      }
    if (c.shuffle_tokens) {
      std::vector<size_t> order(pos.size());
      std::iota(order.begin(), order.end(), size_t(0));
      std::shuffle(order.begin(), order.end(), rng);
      std::vector<int32_t> p2, s2;
      for (size_t i : order) p2.push_back(pos[i]), s2.push_back(token_seq[i]);
      pos = p2, token_seq = s2;
    }

    const size_t cache = size_t(num_blocks * bs * kv_stride);
    k = testing::random_floats(cache, seed + 1, 1.5f);
    v = testing::random_floats(cache, seed + 2);
    std::vector<bool> used(static_cast<size_t>(num_blocks * bs), false);
    for (size_t t = 0; t < pos.size(); ++t)
      for (int64_t j = 0; j <= pos[t]; ++j)
        used[size_t(row_of(size_t(token_seq[t]), j, bs))] = true;
    for (size_t r = 0; r < used.size(); ++r)
      if (!used[r])
        for (int64_t e = 0; e < kv_stride; ++e)
          k[r * size_t(kv_stride) + size_t(e)] = v[r * size_t(kv_stride) + size_t(e)] =
              std::numeric_limits<float>::quiet_NaN();
    q = testing::random_floats(pos.size() * size_t(c.n_heads * c.head_dim), seed + 3, 1.5f);
  }

  // Cache row (block * block_size + row in block) of position j of sequence s.
  int64_t row_of(size_t s, int64_t j, int64_t bs) const {
    return int64_t(tables[s][size_t(j / bs)]) * bs + j % bs;
  }

  paged_attention_args args(const paged_case& c, float* out) const {
    return {q.data(), out, int64_t(pos.size()), c.n_heads, c.n_kv_heads, c.head_dim,
            k.data(), v.data(), c.block_size, pos, token_seq, table_spans};
  }
};

// Plain softmax over keys 0..pos in double, reading K/V through the block tables.
std::vector<double> reference(const paged_case& c, const paged_setup& s) {
  const int64_t q_stride = c.n_heads * c.head_dim, kv_stride = c.n_kv_heads * c.head_dim;
  const int64_t group = c.n_heads / c.n_kv_heads;
  const double scale = 1.0 / std::sqrt(double(c.head_dim));
  std::vector<double> want(s.q.size());
  for (size_t t = 0; t < s.pos.size(); ++t)
    for (int64_t h = 0; h < c.n_heads; ++h) {
      const int64_t g = h / group, len = s.pos[t] + 1;
      std::vector<double> sc(static_cast<size_t>(len));
      double mx = -1e300;
      for (int64_t j = 0; j < len; ++j) {
        const float* kr = s.k.data() + s.row_of(size_t(s.token_seq[t]), j, c.block_size) * kv_stride + g * c.head_dim;
        double d = 0;
        for (int64_t e = 0; e < c.head_dim; ++e) d += double(s.q[t * size_t(q_stride) + size_t(h * c.head_dim + e)]) * kr[e];
        sc[size_t(j)] = d * scale;
        mx = std::max(mx, sc[size_t(j)]);
      }
      double sum = 0;
      for (auto& x : sc) sum += (x = std::exp(x - mx));
      for (int64_t j = 0; j < len; ++j) {
        const float* vr = s.v.data() + s.row_of(size_t(s.token_seq[t]), j, c.block_size) * kv_stride + g * c.head_dim;
        for (int64_t e = 0; e < c.head_dim; ++e)
          want[t * size_t(q_stride) + size_t(h * c.head_dim + e)] += sc[size_t(j)] / sum * vr[e];
      }
    }
  return want;
}

// Relative tolerance 1e-4, with |want| floored at 0.1 so values near zero get 1e-5 absolute.
void expect_close(std::span<const float> got, std::span<const double> want, int64_t row_len,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    const double tol = 1e-4 * std::max(std::abs(want[i]), 0.1);
    ASSERT_NEAR(got[i], want[i], tol) << what << " token " << int64_t(i) / row_len << " element "
                                      << int64_t(i) % row_len;
  }
}

void check(thread_pool& pool, const paged_case& c) {
  const paged_setup s(c);
  const std::vector<double> want = reference(c, s);
  const int64_t row_len = c.n_heads * c.head_dim;
  const std::string shape = "heads " + std::to_string(c.n_heads) + "/" + std::to_string(c.n_kv_heads) +
                            " head_dim " + std::to_string(c.head_dim) + " block " + std::to_string(c.block_size);
  for (simd_level level : supported_levels()) {
    std::vector<float> out(s.q.size(), std::numeric_limits<float>::quiet_NaN());
    detail::paged_attention_on(level, pool, s.args(c, out.data()));
    expect_close(out, want, row_len, std::string(level_name(level)) + " " + shape);
  }
  std::vector<float> out(s.q.size(), std::numeric_limits<float>::quiet_NaN());
  paged_attention(pool, s.args(c, out.data()));
  expect_close(out, want, row_len, "public " + shape);
}

struct head_shape {
  int64_t n_heads, n_kv_heads, head_dim, block_size;
};
// GQA and MHA, head_dim 64 and 128, block sizes 16 and 8; TinyLlama's 32 / 4 heads (a group of 8).
constexpr head_shape shapes[] = {{8, 2, 64, 16}, {8, 2, 128, 8}, {4, 4, 64, 8}, {4, 4, 128, 16},
                                 {32, 4, 64, 16}};

TEST(PagedAttention, DecodeSequencesOfDifferentLengths) {
  thread_pool pool(2);
  for (const head_shape& h : shapes) {
    paged_case c{h.n_heads, h.n_kv_heads, h.head_dim, h.block_size, {}};
    for (int32_t len : {1, 2, 7, 8, 9, 15, 16, 17, 31, 33, 100, 257, 300})
      c.seqs.push_back({len, {len - 1}});
    check(pool, c);
  }
}

TEST(PagedAttention, PrefillChunkIsCausal) {
  thread_pool pool(3);
  for (const head_shape& h : shapes) {
    // A first chunk from position 0, and a later chunk starting inside a block.
    check(pool, {h.n_heads, h.n_kv_heads, h.head_dim, h.block_size, {{48, range(0, 48)}}, false});
    check(pool, {h.n_heads, h.n_kv_heads, h.head_dim, h.block_size, {{90, range(10, 90)}}, false});
  }
}

TEST(PagedAttention, MixedDecodeAndPrefillBatch) {
  thread_pool pool(2);
  for (const head_shape& h : shapes)
    check(pool, {h.n_heads, h.n_kv_heads, h.head_dim, h.block_size,
                 {{300, {299}}, {17, {16}}, {73, range(40, 73)}, {1, {0}}, {129, {128}}}});
}

TEST(PagedAttention, SharedPrefixBlocksAndShuffledTables) {
  thread_pool pool(2);
  for (const head_shape& h : shapes) {
    const int32_t bs = int32_t(h.block_size);
    // Sequences 1 and 2 reuse sequence 0's first blocks (a prefix-cache hit) and go on in their own.
    check(pool, {h.n_heads, h.n_kv_heads, h.head_dim, h.block_size,
                 {{4 * bs, {4 * bs - 1, 2 * bs}},
                  {3 * bs + 6, range(3 * bs - 2, 3 * bs + 6), 0, 3},
                  {2 * bs + 1, {2 * bs}, 0, 2}}});
  }
}

TEST(PagedAttention, PositionsAtBlockBoundaries) {
  thread_pool pool(2);
  check(pool, {8, 2, 64, 16, {{16, {15}}, {17, {16}}, {18, {17}}, {33, {31, 32}}, {49, range(14, 18)}}});
  check(pool, {4, 4, 128, 8, {{8, {7}}, {9, {8}}, {10, {9}}, {17, {15, 16}}}});
}

TEST(PagedAttention, OddShapesAndSingleThread) {
  thread_pool pool(1);
  // head_dim not a multiple of the vector width, group of 3, a block larger than the tile of 32.
  check(pool, {6, 2, 48, 16, {{40, range(30, 40)}, {5, {4}}}});
  check(pool, {4, 1, 80, 64, {{150, {149, 63, 64, 127, 128}}}});
  // Every head size the AVX-512 item has a kernel for (16..128 in steps of 16), groups of 1-7 heads
  // (the 4-head and 1-head score and P V steps, and their tails), and a size it leaves to the
  // generic item (40).
  for (int64_t hd : {16, 32, 48, 96, 112, 40})
    for (int64_t group : {1, 5, 7})
      check(pool, {2 * group, 2, hd, 16, {{37, range(20, 37)}, {70, {69}}}});
}

// cpu::attention on the same keys and values gathered into contiguous rows: decode, the few-token
// route and the prefill (sgemm) route.
TEST(PagedAttention, MatchesContiguousAttention) {
  thread_pool pool(2);
  for (const head_shape& h : shapes)
    for (const std::vector<int32_t>& queries : {std::vector<int32_t>{139}, range(130, 140), range(0, 140)}) {
      const paged_case c{h.n_heads, h.n_kv_heads, h.head_dim, h.block_size, {{140, queries}}, false};
      const paged_setup s(c);
      const int64_t kv_stride = c.n_kv_heads * c.head_dim, kv_len = 140;
      std::vector<float> k(static_cast<size_t>(kv_len * kv_stride)), v(k.size());
      for (int64_t j = 0; j < kv_len; ++j) {
        const int64_t r = s.row_of(0, j, c.block_size);
        std::copy_n(s.k.data() + r * kv_stride, kv_stride, k.data() + j * kv_stride);
        std::copy_n(s.v.data() + r * kv_stride, kv_stride, v.data() + j * kv_stride);
      }
      std::vector<float> want(s.q.size()), got(s.q.size());
      attention(pool, s.q.data(), int64_t(s.pos.size()), s.pos, k.data(), v.data(), kv_len, c.n_heads,
                c.n_kv_heads, c.head_dim, want.data());
      paged_attention(pool, s.args(c, got.data()));
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-4 * std::max(std::abs(double(want[i])), 0.1))
            << "tokens " << queries.size() << " head_dim " << c.head_dim << " element " << i;
    }
}

}  // namespace
}  // namespace troupe::engine::cpu
