// A stand-in for the forward pass, for scheduler tests: it "computes" KV by writing each token id
// into a simulated paged cache through the plan's block tables (after the plan's copies), checks
// that every position a sequence attends to holds that sequence's own token (so prefix hits,
// copy-on-write and recomputation are proved right, not assumed), checks the pool's invariants, and
// samples deterministic tokens: the token at position p is next_token(p), plus the sample index.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <vector>

#include "engine/scheduler/scheduler.hpp"

namespace troupe::engine::testing {

inline int32_t next_token(int64_t pos) { return int32_t(1000 + (pos * 31) % 97); }

class fake_model {
 public:
  explicit fake_model(const block_pool& pool)
      : pool_(pool), kv_(size_t(pool.num_blocks()) * size_t(pool.block_size()), -1) {}

  // Runs `plan` and returns the sampled tokens; records failures with gtest.
  std::vector<seq_output> run(const scheduler& s, const step_plan& plan) {
    const int64_t bs = pool_.block_size();
    for (const block_copy& c : plan.copies)
      for (int64_t o = 0; o < bs; ++o) kv_[size_t(c.dst * bs + o)] = kv_[size_t(c.src * bs + o)];
    std::vector<seq_output> out;
    for (const scheduled_seq& q : plan.seqs) {
      const int64_t end = q.start_pos + int64_t(q.tokens.size());
      EXPECT_GE(int64_t(q.block_table.size()) * bs, end) << "seq " << q.seq;
      const auto all = s.seq_tokens(q.seq);
      EXPECT_GE(int64_t(all.size()), end);
      for (int64_t p = q.start_pos; p < end; ++p) {
        const int32_t b = q.block_table[size_t(p / bs)];
        EXPECT_EQ(pool_.ref_count(b), 1) << "seq " << q.seq << " writes shared block " << b;
        kv_[size_t(b * bs + p % bs)] = q.tokens[size_t(p - q.start_pos)];
      }
      for (int64_t p = 0; p < end && p < int64_t(all.size()); ++p) {
        const int32_t b = q.block_table[size_t(p / bs)];
        if (kv_[size_t(b * bs + p % bs)] != all[size_t(p)]) {
          ADD_FAILURE() << "seq " << q.seq << " reads a wrong K/V at position " << p;
          break;
        }
      }
      if (q.num_samples > 0) {
        seq_output o{q.seq, {}};
        for (int32_t i = 0; i < q.num_samples; ++i) o.tokens.push_back(next_token(end) + i);
        out.push_back(std::move(o));
      }
    }
    return out;
  }

 private:
  const block_pool& pool_;
  std::vector<int32_t> kv_;  // token id "stored" at each slot of each block
};

// The pool agrees with the block tables: each block's ref count is the number of tables holding
// it, and a block is in the free queue exactly when nobody holds it.
inline void check_pool(const kv_cache_manager& kv) {
  const block_pool& pool = kv.pool();
  std::map<int32_t, int32_t> held;
  for (seq_id id : kv.seq_ids())
    for (int32_t b : kv.block_table(id)) ++held[b];
  int32_t used = 0;
  for (int32_t b = 0; b < pool.num_blocks(); ++b) {
    const int32_t h = held.count(b) ? held[b] : 0;
    ASSERT_EQ(pool.ref_count(b), h) << "block " << b;
    ASSERT_EQ(pool.is_free(b), h == 0) << "block " << b;
    used += h > 0 ? 1 : 0;
  }
  ASSERT_EQ(pool.num_free(), pool.num_blocks() - used);
  ASSERT_EQ(int64_t(pool.free_queue().size()), int64_t(pool.num_free()));
}

}  // namespace troupe::engine::testing
