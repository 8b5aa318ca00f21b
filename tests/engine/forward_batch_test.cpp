// The batched forward pass over the paged KV cache: several sequences' prefill chunks and decode
// tokens in one step, K/V through shuffled and shared block tables, give the same logits as each
// sequence run alone with its own contiguous KV store; bad batches are clear errors.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

#include "engine/cpu_backend.hpp"
#include "engine/llama_forward.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using ids = std::vector<int32_t>;

class forward_batch_test : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    auto spec = test::small_spec();
    spec.arch = GetParam();
    auto loaded = test::load_cpu_forward("batch_" + spec.arch, spec, 64);
    ASSERT_TRUE(loaded.fwd);
    model_ = std::move(loaded.model);
    be_ = std::move(loaded.be);
    fwd_ = std::move(loaded.fwd);
    vocab_ = model_->config.vocab_size;
  }

  // Logits after `tokens`, run alone with a contiguous store.
  std::vector<float> alone(const ids& tokens) {
    auto kv = fwd_->new_kv(128);
    EXPECT_TRUE(kv) << kv.message();
    std::vector<float> logits(static_cast<size_t>(vocab_));
    auto ok = fwd_->forward(tokens, 0, **kv, logits);
    EXPECT_TRUE(ok) << ok.message();
    return logits;
  }

  ids random_tokens(size_t n, uint32_t seed) {
    std::mt19937 g(seed);
    ids t(n);
    for (auto& x : t) x = int32_t(g() % uint32_t(vocab_));
    return t;
  }

  // Same logits within float rounding of different summation orders (GEMM vs row kernels).
  void expect_close(const std::vector<float>& got, const std::vector<float>& want, const std::string& what) {
    ASSERT_EQ(got.size(), want.size());
    float scale = 0, worst = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      scale = std::max(scale, std::fabs(want[i]));
      worst = std::max(worst, std::fabs(got[i] - want[i]));
    }
    EXPECT_LE(worst, 2e-3f * std::max(scale, 1.0f)) << what;
    EXPECT_EQ(std::max_element(got.begin(), got.end()) - got.begin(),
              std::max_element(want.begin(), want.end()) - want.begin())
        << what;
  }

  std::shared_ptr<const model> model_;
  std::unique_ptr<backend> be_;
  std::unique_ptr<llama_forward> fwd_;
  int64_t vocab_ = 0;
};

// One step's inputs, built sequence by sequence.
struct step_builder {
  ids tokens, pos, token_seq, logit_rows;
  void add(int32_t seq, const ids& all, int32_t from, int32_t to, bool want_logits) {
    for (int32_t p = from; p < to; ++p) {
      tokens.push_back(all[size_t(p)]);
      pos.push_back(p);
      token_seq.push_back(seq);
    }
    if (want_logits) logit_rows.push_back(int32_t(tokens.size()) - 1);
  }
};

TEST_P(forward_batch_test, mixed_batches_match_each_sequence_alone) {
  constexpr int64_t block_size = 8;
  auto kv = fwd_->new_paged_kv(32, block_size);
  ASSERT_TRUE(kv) << kv.message();
  // Three prompts; tables out of order, as a block pool hands them out.
  const ids a = random_tokens(21, 1), b = random_tokens(5, 2), c = random_tokens(38, 3);
  const std::vector<ids> tables = {{5, 1, 9}, {2}, {7, 3, 11, 0, 4}};
  std::vector<std::span<const int32_t>> views(tables.begin(), tables.end());

  const auto run = [&](const step_builder& s) {
    std::vector<float> logits(s.logit_rows.size() * size_t(vocab_));
    llama_forward::batch batch{s.tokens, s.pos, s.token_seq, views, s.logit_rows};
    auto ok = fwd_->forward_batch(batch, **kv, logits);
    EXPECT_TRUE(ok) << ok.message();
    return logits;
  };
  const auto row = [&](const std::vector<float>& logits, size_t r) {
    return std::vector<float>(logits.begin() + long(r) * vocab_, logits.begin() + long(r + 1) * vocab_);
  };

  // Step 1: chunks of a and c, all of b (ends mid-block and on a block boundary).
  step_builder s1;
  s1.add(0, a, 0, 12, false);
  s1.add(1, b, 0, 5, true);
  s1.add(2, c, 0, 16, false);
  const auto l1 = run(s1);
  expect_close(row(l1, 0), alone(b), "b after its prefill");

  // Step 2: the rest of a and c.
  step_builder s2;
  s2.add(2, c, 16, 37, true);
  s2.add(0, a, 12, 20, true);
  const auto l2 = run(s2);
  expect_close(row(l2, 0), alone(ids(c.begin(), c.begin() + 37)), "c after its prefill");
  expect_close(row(l2, 1), alone(ids(a.begin(), a.begin() + 20)), "a after its prefill");

  // Step 3: one decode token each (a crosses into its third block at position 20 -> block 9).
  step_builder s3;
  s3.add(0, a, 20, 21, true);
  s3.add(1, b, 4, 5, false);  // b recomputes its last position (same K/V written again)
  s3.add(2, c, 37, 38, true);
  const auto l3 = run(s3);
  expect_close(row(l3, 0), alone(a), "a after a decode step");
  expect_close(row(l3, 1), alone(c), "c after a decode step");
}

TEST_P(forward_batch_test, a_shared_prefix_block_is_read_not_recomputed) {
  constexpr int64_t block_size = 8;
  auto kv = fwd_->new_paged_kv(8, block_size);
  ASSERT_TRUE(kv) << kv.message();
  ids a = random_tokens(12, 4);
  ids d = a;  // d shares a's first 8 tokens (one full block), then differs
  const ids tail = random_tokens(6, 5);
  d.resize(8);
  d.insert(d.end(), tail.begin(), tail.end());
  const std::vector<ids> tables = {{3, 6}, {3, 1}};  // block 3 holds the shared prefix
  std::vector<std::span<const int32_t>> views(tables.begin(), tables.end());

  step_builder s1;
  s1.add(0, a, 0, 12, true);
  std::vector<float> la(static_cast<size_t>(vocab_));
  auto ok = fwd_->forward_batch({s1.tokens, s1.pos, s1.token_seq, views, s1.logit_rows}, **kv, la);
  ASSERT_TRUE(ok) << ok.message();
  expect_close(la, alone(a), "a");

  // d computes only positions 8.. and reads 0..7 from the shared block.
  step_builder s2;
  s2.add(1, d, 8, 14, true);
  std::vector<float> ld(static_cast<size_t>(vocab_));
  ok = fwd_->forward_batch({s2.tokens, s2.pos, s2.token_seq, views, s2.logit_rows}, **kv, ld);
  ASSERT_TRUE(ok) << ok.message();
  expect_close(ld, alone(d), "d over a's cached prefix");
}

TEST_P(forward_batch_test, bad_batches_are_clear_errors) {
  auto kv = fwd_->new_paged_kv(4, 8);
  ASSERT_TRUE(kv) << kv.message();
  const ids table = {0, 1};
  std::vector<std::span<const int32_t>> views = {table};
  std::vector<float> logits(static_cast<size_t>(vocab_));
  const auto err = [&](ids tokens, ids pos, ids seq, std::vector<std::span<const int32_t>> tables, ids rows,
                       std::span<float> out) {
    auto r = fwd_->forward_batch({tokens, pos, seq, tables, rows}, **kv, out);
    EXPECT_FALSE(r);
    return r ? std::string() : r.message();
  };
  EXPECT_NE(err({int32_t(vocab_)}, {0}, {0}, views, {0}, logits).find("outside the vocabulary"), std::string::npos);
  EXPECT_NE(err({1}, {16}, {0}, views, {0}, logits).find("beyond its block table"), std::string::npos);
  EXPECT_NE(err({1}, {0}, {1}, views, {0}, logits).find("names sequence 1"), std::string::npos);
  const ids bad_table = {0, 9};
  EXPECT_NE(err({1}, {0}, {0}, {bad_table}, {0}, logits).find("block 9 is outside"), std::string::npos);
  EXPECT_NE(err({1}, {0}, {0}, views, {1}, logits).find("logit row 1"), std::string::npos);
  EXPECT_NE(err({1}, {0}, {0}, views, {0}, std::span<float>(logits).first(3)).find("logit_rows x vocab"),
            std::string::npos);
  EXPECT_NE(err(ids(65, 1), ids(65, 0), ids(65, 0), views, {}, {}).find("exceed the step budget"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(archs, forward_batch_test, ::testing::Values("llama", "qwen2", "mistral"));

}  // namespace
}  // namespace troupe::engine
