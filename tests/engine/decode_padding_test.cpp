// Padding decode batches for CUDA graphs (decode_padding.hpp): the buckets cover every batch size
// with little waste; only one-token-per-sequence batches qualify; and a padded batch run through
// the forward pass on the CPU gives the real sequences the logits of the unpadded batch, step after
// step (the padding tokens write only the spare block and disturb no sequence's K/V).
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <set>

#include "engine/decode_padding.hpp"
#include "engine/llama_forward.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using ids = std::vector<int32_t>;

TEST(decode_padding, buckets_cover_every_size_with_little_waste) {
  std::set<int64_t> buckets;
  int64_t previous = 0;
  for (int64_t n = 1; n <= 512; ++n) {
    const int64_t b = graph_bucket(n);
    EXPECT_GE(b, n);
    EXPECT_GE(b, previous) << "buckets grow with n";
    EXPECT_LT(b - n, n > 4 ? 8 : n) << "at most 7 padding tokens beyond 4 (and under n below)";
    EXPECT_EQ(graph_bucket(b), b) << "a bucket is its own bucket";
    buckets.insert(b);
    previous = b;
  }
  EXPECT_EQ(buckets.size(), 3u + 512u / 8u);  // 1, 2, 4, then 8, 16, ..., 512
}

TEST(decode_padding, only_one_token_per_sequence_with_all_or_no_logits_qualifies) {
  EXPECT_TRUE(is_graph_decode(ids{2, 0, 1}, ids{0, 1, 2}, 3));
  EXPECT_TRUE(is_graph_decode(ids{2, 0, 1}, ids{}, 3));            // a follower rank: no logits
  EXPECT_FALSE(is_graph_decode(ids{0, 0, 1}, ids{1, 2}, 2));       // a prefill chunk
  EXPECT_FALSE(is_graph_decode(ids{0, 1, 2}, ids{0, 2}, 3));       // not every row's logits
  EXPECT_FALSE(is_graph_decode(ids{0, 1, 2}, ids{1, 0, 2}, 3));    // out of order
  EXPECT_FALSE(is_graph_decode(ids{0, 3}, ids{0, 1}, 3));          // no such sequence
  EXPECT_FALSE(is_graph_decode(ids{}, ids{}, 0));
}

TEST(decode_padding, padding_adds_one_sequence_on_the_spare_block) {
  const ids tokens{5, 6, 7}, pos{10, 3, 0}, token_seq{1, 0, 2};
  const ids t0{4, 5}, t1{6}, t2{7};
  const std::vector<std::span<const int32_t>> tables{t0, t1, t2};
  decode_padding p;
  pad_decode_batch(tokens, pos, token_seq, tables, 8, 99, p);
  EXPECT_EQ(p.tokens, (ids{5, 6, 7, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.pos, (ids{10, 3, 0, 0, 0, 0, 0, 0}));
  EXPECT_EQ(p.token_seq, (ids{1, 0, 2, 3, 3, 3, 3, 3}));
  ASSERT_EQ(p.tables.size(), 4u);
  EXPECT_EQ(ids(p.tables[3].begin(), p.tables[3].end()), ids{99});
  EXPECT_EQ(p.tables[0].data(), t0.data());
}

TEST(decode_padding, a_padded_decode_batch_leaves_the_real_sequences_as_they_were) {
  const auto spec = test::small_spec();
  auto plain = test::load_cpu_forward("decode_padding", spec, 16);
  auto padded = test::load_cpu_forward("decode_padding", spec, 16);
  ASSERT_TRUE(plain.fwd && padded.fwd);
  const int64_t vocab = plain.model->config.vocab_size;
  // Blocks of 4 positions; sequence s owns blocks 4s..4s+3; block 15 is the spare.
  constexpr int32_t block_size = 4, spare = 15;
  auto kv_plain = plain.fwd->new_paged_kv(16, block_size);
  auto kv_padded = padded.fwd->new_paged_kv(16, block_size);
  ASSERT_TRUE(kv_plain && kv_padded);
  std::vector<ids> tables_store{{0, 1, 2, 3}, {4, 5, 6, 7}, {8, 9, 10, 11}};
  const std::vector<std::span<const int32_t>> tables(tables_store.begin(), tables_store.end());
  const std::vector<ids> prompts{{3, 14, 15, 92, 65}, {35, 89, 79, 32, 38, 46, 26}, {43, 38, 32}};

  // Prefill every prompt in one step (the same on both), logits of each last token.
  ids tokens, pos, token_seq, rows;
  for (int32_t s = 0; s < 3; ++s) {
    for (size_t i = 0; i < prompts[size_t(s)].size(); ++i) {
      tokens.push_back(prompts[size_t(s)][i]);
      pos.push_back(int32_t(i));
      token_seq.push_back(s);
    }
    rows.push_back(int32_t(tokens.size()) - 1);
  }
  std::vector<float> logits(3 * size_t(vocab));
  const llama_forward::batch prefill{tokens, pos, token_seq, tables, rows};
  ASSERT_TRUE(plain.fwd->forward_batch(prefill, **kv_plain, logits));
  ASSERT_TRUE(padded.fwd->forward_batch(prefill, **kv_padded, logits));

  auto argmax = [vocab](const std::vector<float>& l, size_t row) {
    const auto first = l.begin() + std::ptrdiff_t(row * size_t(vocab));
    return int32_t(std::max_element(first, first + vocab) - first);
  };
  ids next{argmax(logits, 0), argmax(logits, 1), argmax(logits, 2)};
  ids at{5, 7, 3};
  // Eight decode steps: unpadded on one cache, padded to 8 tokens on the other.
  for (int step = 0; step < 8; ++step) {
    const ids seqs{2, 0, 1};  // not in table order
    ids dt, dp;
    for (int32_t s : seqs) {
      dt.push_back(next[size_t(s)]);
      dp.push_back(at[size_t(s)]);
    }
    const ids all_rows{0, 1, 2};
    std::vector<float> want(3 * size_t(vocab));
    ASSERT_TRUE(plain.fwd->forward_batch({dt, dp, seqs, tables, all_rows}, **kv_plain, want));

    decode_padding p;
    pad_decode_batch(dt, dp, seqs, tables, graph_bucket(8), spare, p);
    ids padded_rows(p.tokens.size());
    std::iota(padded_rows.begin(), padded_rows.end(), 0);
    std::vector<float> got(p.tokens.size() * size_t(vocab));
    ASSERT_TRUE(padded.fwd->forward_batch({p.tokens, p.pos, p.token_seq, p.tables, padded_rows}, **kv_padded, got));
    got.resize(want.size());  // the real rows come first
    EXPECT_LT(test::rel_error(got, want), 1e-4) << "step " << step;
    for (size_t r = 0; r < seqs.size(); ++r) {
      EXPECT_EQ(argmax(got, r), argmax(want, r)) << "step " << step << " row " << r;
      next[size_t(seqs[r])] = argmax(want, r);
      ++at[size_t(seqs[r])];
    }
  }
}

}  // namespace
}  // namespace troupe::engine
