// The Megatron shard plan: for tp 1, 2 and 4, every row and column is held by exactly one rank,
// kv heads are split or replicated as GQA requires, and bad divisibility names the field.
#include <gtest/gtest.h>

#include <vector>

#include "engine/parallel/shard_plan.hpp"

namespace troupe::engine::parallel {
namespace {

model_config gqa(int64_t n_heads, int64_t n_kv_heads, int64_t ffn_dim) {
  model_config c;
  c.arch = "llama";
  c.n_layers = 2;
  c.head_dim = 16;
  c.n_heads = n_heads;
  c.n_kv_heads = n_kv_heads;
  c.dim = n_heads * c.head_dim;
  c.ffn_dim = ffn_dim;
  c.vocab_size = 300;
  c.max_position = 64;
  return c;
}

std::vector<shard_plan> plans(const model_config& c, int tp) {
  std::vector<shard_plan> out;
  for (int r = 0; r < tp; ++r) {
    auto p = make_shard_plan(c, r, tp);
    EXPECT_TRUE(p) << p.message();
    if (p) out.push_back(*p);
  }
  return out;
}

// Each index of [0, total) is in exactly one of the ranges.
void expect_partition(const std::vector<index_range>& ranges, int64_t total, const char* what) {
  std::vector<int> held(size_t(total), 0);
  for (const auto& r : ranges) {
    ASSERT_LE(0, r.begin) << what;
    ASSERT_LT(r.begin, r.end) << what;
    ASSERT_LE(r.end, total) << what;
    for (int64_t i = r.begin; i < r.end; ++i) ++held[size_t(i)];
  }
  for (int64_t i = 0; i < total; ++i) EXPECT_EQ(held[size_t(i)], 1) << what << " index " << i;
}

template <class F>
std::vector<index_range> collect(const std::vector<shard_plan>& ps, F field) {
  std::vector<index_range> out;
  for (const auto& p : ps) out.push_back(field(p));
  return out;
}

struct shape {
  int64_t n_heads, n_kv_heads, ffn_dim;
};

class shard_plans : public ::testing::TestWithParam<std::tuple<shape, int>> {};

TEST_P(shard_plans, cover_every_row_and_column_once_and_keep_attention_local) {
  const auto [s, tp] = GetParam();
  const model_config c = gqa(s.n_heads, s.n_kv_heads, s.ffn_dim);
  const auto ps = plans(c, tp);
  ASSERT_EQ(ps.size(), size_t(tp));
  expect_partition(collect(ps, [](const shard_plan& p) { return p.q_heads; }), c.n_heads, "q heads");
  expect_partition(collect(ps, [](const shard_plan& p) { return p.q_rows; }), c.q_dim(), "wq rows");
  expect_partition(collect(ps, [](const shard_plan& p) { return p.o_cols; }), c.q_dim(), "wo columns");
  expect_partition(collect(ps, [](const shard_plan& p) { return p.gate_rows; }), c.ffn_dim, "w_gate rows");
  expect_partition(collect(ps, [](const shard_plan& p) { return p.up_rows; }), c.ffn_dim, "w_up rows");
  expect_partition(collect(ps, [](const shard_plan& p) { return p.down_cols; }), c.ffn_dim, "w_down columns");

  const int64_t group = c.n_heads / c.n_kv_heads;  // q heads per kv head
  std::vector<int> holders(size_t(c.n_kv_heads), 0);
  for (const auto& p : ps) {
    EXPECT_EQ(p.kv_replicated, c.n_kv_heads < tp);
    EXPECT_EQ(p.k_rows.begin, p.kv_heads.begin * c.head_dim);
    EXPECT_EQ(p.k_rows.end, p.kv_heads.end * c.head_dim);
    EXPECT_EQ(p.v_rows, p.k_rows);
    EXPECT_EQ(p.o_cols, p.q_rows);
    EXPECT_EQ(p.down_cols, p.gate_rows);
    // Every q head of the rank finds its kv head on the same rank: attention needs no exchange.
    for (int64_t h = p.q_heads.begin; h < p.q_heads.end; ++h) {
      EXPECT_LE(p.kv_heads.begin, h / group) << "rank " << p.rank << " q head " << h;
      EXPECT_LT(h / group, p.kv_heads.end) << "rank " << p.rank << " q head " << h;
    }
    for (int64_t k = p.kv_heads.begin; k < p.kv_heads.end; ++k) ++holders[size_t(k)];
    // The shard on its own is a valid, smaller GQA model.
    const model_config local = shard_config(c, p);
    EXPECT_EQ(local.n_heads * tp, c.n_heads);
    EXPECT_EQ(local.ffn_dim * tp, c.ffn_dim);
    EXPECT_EQ(local.n_heads / local.n_kv_heads, c.n_kv_heads < tp ? c.n_heads / tp : group);
    EXPECT_EQ(check_config(local, "shard"), std::nullopt);
  }
  // Split: each kv head on one rank. Replicated: each on tp / n_kv_heads ranks, one per rank.
  const int want = c.n_kv_heads < tp ? int(tp / c.n_kv_heads) : 1;
  for (int64_t k = 0; k < c.n_kv_heads; ++k) EXPECT_EQ(holders[size_t(k)], want) << "kv head " << k;
  if (c.n_kv_heads < tp) {
    for (const auto& p : ps) EXPECT_EQ(p.kv_heads.size(), 1);
  }
}

// 8 q heads over 2 kv heads (replicated at tp 4), and 8 over 4 (split at every tp).
INSTANTIATE_TEST_SUITE_P(tp, shard_plans,
                         ::testing::Combine(::testing::Values(shape{8, 2, 96}, shape{8, 4, 64}, shape{4, 4, 32}),
                                            ::testing::Values(1, 2, 4)));

TEST(shard_plan, replicated_kv_heads_follow_their_q_heads) {
  // 8 q heads, 2 kv heads, tp 4: ranks 0-1 hold q heads 0-3 and kv head 0; ranks 2-3 q 4-7, kv 1.
  const auto ps = plans(gqa(8, 2, 96), 4);
  ASSERT_EQ(ps.size(), 4u);
  const int64_t want_kv[] = {0, 0, 1, 1};
  for (int r = 0; r < 4; ++r) {
    EXPECT_EQ(ps[size_t(r)].q_heads, (index_range{2 * r, 2 * r + 2}));
    EXPECT_EQ(ps[size_t(r)].kv_heads, (index_range{want_kv[r], want_kv[r] + 1}));
    EXPECT_EQ(ps[size_t(r)].k_rows, (index_range{want_kv[r] * 16, want_kv[r] * 16 + 16}));
    EXPECT_EQ(ps[size_t(r)].gate_rows, (index_range{24 * r, 24 * r + 24}));
    EXPECT_TRUE(ps[size_t(r)].kv_replicated);
  }
}

TEST(shard_plan, tp_one_holds_everything) {
  const model_config c = gqa(8, 2, 96);
  auto p = make_shard_plan(c, 0, 1);
  ASSERT_TRUE(p) << p.message();
  EXPECT_EQ(p->q_rows, (index_range{0, c.q_dim()}));
  EXPECT_EQ(p->k_rows, (index_range{0, c.kv_dim()}));
  EXPECT_EQ(p->down_cols, (index_range{0, c.ffn_dim}));
  EXPECT_FALSE(p->kv_replicated);
}

void expect_error(const model_config& c, int rank, int tp, const std::string& want) {
  auto p = make_shard_plan(c, rank, tp);
  ASSERT_FALSE(p) << want;
  EXPECT_NE(p.message().find(want), std::string::npos) << p.message();
}

TEST(shard_plan, bad_divisibility_names_the_field_its_value_and_tp) {
  expect_error(gqa(6, 6, 64), 0, 4, "tp = 4: num_attention_heads = 6 is not divisible by tp");
  expect_error(gqa(12, 3, 64), 0, 2, "tp = 2: num_key_value_heads = 3 and tp must divide one another");
  expect_error(gqa(12, 6, 64), 0, 4, "tp = 4: num_key_value_heads = 6 and tp must divide one another");
  expect_error(gqa(8, 8, 100), 0, 8, "tp = 8: intermediate_size = 100 is not divisible by tp");
  expect_error(gqa(8, 8, 64), 0, 0, "tp = 0: tp must be at least 1");
  expect_error(gqa(8, 8, 64), 2, 2, "tp = 2: rank 2 is out of range");
  expect_error(gqa(8, 8, 64), -1, 2, "rank -1 is out of range");
}

}  // namespace
}  // namespace troupe::engine::parallel
