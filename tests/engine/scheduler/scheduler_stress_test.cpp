// A seeded randomized run: random arrivals, prompt lengths, shared prefixes, priorities, n > 1
// forks and aborts over a pool small enough to force preemption, with the invariants checked after
// every step (the fake model checks the KV each sequence reads and that written blocks are not
// shared; check_pool checks ref counts against the block tables). Every request must finish or be
// aborted, every generated token must be the fake model's, and the pool must end entirely free.
#include <gtest/gtest.h>

#include <map>
#include <ostream>
#include <random>
#include <set>
#include <vector>

#include "engine/scheduler/scheduler.hpp"
#include "tests/engine/scheduler/fake_model.hpp"

namespace troupe::engine {
namespace {

using testing::check_pool;
using testing::fake_model;
using testing::next_token;

struct stress_params {
  uint32_t seed;
  int32_t num_blocks;
  int32_t block_size;
  int64_t budget;
  int32_t max_running;
};

void PrintTo(const stress_params& p, std::ostream* os) {
  *os << "seed " << p.seed << ", " << p.num_blocks << " blocks of " << p.block_size << ", budget " << p.budget
      << ", max_running " << p.max_running;
}

class scheduler_stress : public ::testing::TestWithParam<stress_params> {};

TEST_P(scheduler_stress, random_traffic_finishes_without_leaks) {
  const stress_params prm = GetParam();
  std::mt19937 rng(prm.seed);
  auto uniform = [&rng](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };

  block_pool pool(prm.num_blocks, prm.block_size);
  kv_cache_manager kv(pool, {"stress-model"});
  scheduler_config cfg;
  cfg.max_batched_tokens = prm.budget;
  cfg.max_running = prm.max_running;
  cfg.max_model_len = 96;
  scheduler sched(cfg, kv, make_fcfs_priority_policy());
  fake_model model(pool);

  std::vector<std::vector<int32_t>> prefixes;
  for (int i = 0; i < 4; ++i) {
    std::vector<int32_t> p;
    const int len = uniform(prm.block_size, 3 * prm.block_size);
    for (int j = 0; j < len; ++j) p.push_back(uniform(1, 900));
    prefixes.push_back(p);
  }

  const int num_requests = 150;
  int added = 0, rejected = 0, aborted = 0;
  std::map<request_id, request> live;
  std::map<request_id, int> seqs_done;
  std::set<request_id> done;
  int64_t steps = 0;
  int64_t max_tokens_seen = 0;
  int64_t forks = 0, copies = 0, stops = 0;
  while ((added < num_requests || sched.has_unfinished()) && steps < 20000) {
    // Arrivals.
    for (int k = uniform(0, 2); k > 0 && added < num_requests; --k) {
      request r;
      r.id = 1000 + added++;
      if (uniform(0, 2) > 0) r.prompt = prefixes[size_t(uniform(0, 3))];
      for (int j = uniform(1, 20); j > 0; --j) r.prompt.push_back(uniform(1, 900));
      r.max_tokens = uniform(1, 24);
      r.priority = uniform(0, 2);
      r.n = uniform(0, 4) == 0 ? uniform(2, 3) : 1;
      if (uniform(0, 3) == 0) r.stop.token_ids = {next_token(uniform(10, 60))};
      if (uniform(0, 30) == 0) r.max_tokens = 200;  // beyond the context: rejected
      auto ok = sched.add_request(r);
      if (!ok) {
        ++rejected;
        EXPECT_TRUE(ok.message().find("exceeds the context") != std::string::npos ||
                    ok.message().find("the whole cache has") != std::string::npos)
            << ok.message();
        continue;
      }
      live.emplace(r.id, r);
    }
    // Aborts.
    if (!live.empty() && uniform(0, 25) == 0) {
      auto it = live.begin();
      std::advance(it, uniform(0, int(live.size()) - 1));
      EXPECT_TRUE(sched.abort(it->first));
      ++aborted;
      live.erase(it);
      check_pool(kv);
    }

    const step_plan plan = sched.schedule();
    ++steps;
    ASSERT_LE(plan.num_tokens, cfg.max_batched_tokens);
    int64_t sum = 0;
    std::set<seq_id> seen;
    for (const scheduled_seq& q : plan.seqs) {
      sum += int64_t(q.tokens.size());
      ASSERT_TRUE(seen.insert(q.seq).second) << "a sequence twice in one step";
      ASSERT_FALSE(q.tokens.empty());
    }
    ASSERT_EQ(sum, plan.num_tokens);
    max_tokens_seen = std::max(max_tokens_seen, sum);
    ASSERT_LE(sched.num_running(), size_t(cfg.max_running));
    if (plan.empty() && sched.has_unfinished()) {
      ASSERT_TRUE(sched.num_running() > 0 || sched.num_waiting() > 0);
    }
    copies += int64_t(plan.copies.size());
    const auto outputs = model.run(sched, plan);
    if (::testing::Test::HasFailure()) return;
    auto u = sched.update(outputs);
    ASSERT_TRUE(u) << u.message();
    forks += int64_t(u->forks.size());
    for (const finished_seq& f : u->finished) {
      stops += f.reason == finish_reason::stop ? 1 : 0;
      auto it = live.find(f.request);
      ASSERT_NE(it, live.end()) << "finished twice or unknown: " << f.request;
      const request& r = it->second;
      const int64_t L = int64_t(r.prompt.size());
      ASSERT_GE(f.generated.size(), 1u);
      ASSERT_LE(int64_t(f.generated.size()), r.max_tokens);
      for (size_t j = 1; j < f.generated.size(); ++j)
        ASSERT_EQ(f.generated[j], next_token(L + int64_t(j))) << "request " << f.request;
      const int32_t first = f.generated[0] - next_token(L);
      ASSERT_TRUE(first >= 0 && first < r.n);
      if (f.reason == finish_reason::length) ASSERT_EQ(int64_t(f.generated.size()), r.max_tokens);
      else ASSERT_EQ(f.generated.back(), r.stop.token_ids.at(0));
      ++seqs_done[f.request];
      if (f.request_done) {
        ASSERT_EQ(seqs_done[f.request], r.n);
        live.erase(it);
        done.insert(f.request);
      }
    }
    check_pool(kv);
    if (::testing::Test::HasFatalFailure()) return;
  }

  EXPECT_LT(steps, 20000) << "no progress";
  EXPECT_TRUE(live.empty());
  EXPECT_FALSE(sched.has_unfinished());
  EXPECT_EQ(int(done.size()) + aborted + rejected, num_requests);
  EXPECT_EQ(pool.num_free(), pool.num_blocks()) << "leaked blocks";
  for (int32_t b = 0; b < pool.num_blocks(); ++b) EXPECT_EQ(pool.ref_count(b), 0);
  EXPECT_EQ(kv.num_seqs(), 0u);
  // The run must have exercised what it is for.
  EXPECT_GT(sched.num_preemptions(), 0) << "the pool was not small enough to preempt";
  EXPECT_GT(kv.stats().prefix_hit_tokens, 0);
  EXPECT_GT(rejected, 0);
  EXPECT_GT(forks, 0);
  EXPECT_GT(copies, 0) << "no copy-on-write happened";
  EXPECT_GT(stops, 0);
  EXPECT_GT(aborted, 0);
  EXPECT_EQ(max_tokens_seen, cfg.max_batched_tokens) << "the budget was never filled";
  RecordProperty("steps", int(steps));
  RecordProperty("preemptions", int(sched.num_preemptions()));
}

INSTANTIATE_TEST_SUITE_P(seeds, scheduler_stress,
                         ::testing::Values(stress_params{1, 12, 8, 32, 8}, stress_params{2, 24, 4, 16, 6},
                                           stress_params{3, 7, 16, 64, 4}, stress_params{4, 40, 2, 24, 12},
                                           stress_params{5, 10, 8, 8, 3}, stress_params{6, 40, 4, 64, 32}));

}  // namespace
}  // namespace troupe::engine
