// The scheduler on small cases worked out by hand: admission errors, token budget and chunked
// prefill, decodes before prefills, priority classes, preemption by recomputation, abort, n > 1
// forks with copy-on-write, and prefix hits between requests. The fake model checks the KV every
// sequence reads (see fake_model.hpp).
#include <gtest/gtest.h>

#include <numeric>
#include <vector>

#include "engine/scheduler/scheduler.hpp"
#include "tests/engine/scheduler/fake_model.hpp"

namespace troupe::engine {
namespace {

using testing::check_pool;
using testing::fake_model;
using testing::next_token;

std::vector<int32_t> range_of(int32_t first, int32_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), first);
  return t;
}

request req(request_id id, std::vector<int32_t> prompt, int32_t max_tokens, int32_t priority = 0,
                  int32_t n = 1) {
  request r;
  r.id = id;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.priority = priority;
  r.n = n;
  return r;
}

// Pool, manager, scheduler and fake model, wired as the engine will.
struct rig {
  block_pool pool;
  kv_cache_manager kv;
  scheduler sched;
  fake_model model;
  std::vector<finished_seq> finished;
  std::vector<forked_seq> forks;

  rig(int32_t num_blocks, int32_t block_size, scheduler_config cfg)
      : pool(num_blocks, block_size),
        kv(pool, {"test-model"}),
        sched(cfg, kv, make_fcfs_priority_policy()),
        model(pool) {}

  step_plan step() {
    step_plan plan = sched.schedule();
    EXPECT_LE(plan.num_tokens, sched.config().max_batched_tokens);
    const auto out = model.run(sched, plan);
    auto r = sched.update(out);
    EXPECT_TRUE(r) << (r ? "" : r.message());
    if (r) {
      finished.insert(finished.end(), r->finished.begin(), r->finished.end());
      forks.insert(forks.end(), r->forks.begin(), r->forks.end());
    }
    check_pool(kv);
    return plan;
  }

  void run_to_end(int max_steps = 1000) {
    for (int i = 0; i < max_steps && sched.has_unfinished(); ++i) step();
    EXPECT_FALSE(sched.has_unfinished()) << "did not finish in " << max_steps << " steps";
  }
};

scheduler_config cfg(int64_t budget, int32_t max_running = 16, int64_t max_len = 1024) {
  scheduler_config c;
  c.max_batched_tokens = budget;
  c.max_running = max_running;
  c.max_model_len = max_len;
  return c;
}

TEST(scheduler, admission_rejects_what_could_never_run_and_says_why) {
  rig r(8, 4, cfg(64, 4, 40));  // the pool holds 32 tokens, the context 40
  auto too_long = r.sched.add_request(req(1, range_of(0, 30), 20));
  ASSERT_FALSE(too_long);
  EXPECT_EQ(too_long.message(),
            "request 1: prompt (30 tokens) + max_tokens (20) = 50 exceeds the context length 40");
  auto too_big = r.sched.add_request(req(2, range_of(0, 30), 5));
  ASSERT_FALSE(too_big);
  EXPECT_EQ(too_big.message(),
            "request 2: prompt (30 tokens) + max_tokens (5) needs 9 KV blocks of 4 tokens, the whole cache has 8");
  EXPECT_FALSE(r.sched.add_request(req(3, {}, 5)));
  EXPECT_FALSE(r.sched.add_request(req(4, {1}, 0)));
  EXPECT_FALSE(r.sched.add_request(req(5, {1}, 1, 0, 5))) << "n beyond max_running";
  ASSERT_TRUE(r.sched.add_request(req(6, range_of(0, 27), 5)));  // exactly the pool
  EXPECT_FALSE(r.sched.add_request(req(6, {1}, 1))) << "duplicate id";
  EXPECT_EQ(r.sched.num_waiting(), 1u);
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 1u);
  EXPECT_EQ(r.finished[0].generated.size(), 5u);
}

TEST(scheduler, a_long_prompt_is_prefilled_in_chunks_within_the_budget) {
  rig r(32, 4, cfg(8));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 20), 3)));
  const step_plan s1 = r.step();
  ASSERT_EQ(s1.seqs.size(), 1u);
  EXPECT_EQ(s1.seqs[0].start_pos, 0);
  EXPECT_EQ(s1.seqs[0].tokens, range_of(0, 8));
  EXPECT_EQ(s1.seqs[0].num_samples, 0);
  const step_plan s2 = r.step();
  EXPECT_EQ(s2.seqs[0].start_pos, 8);
  EXPECT_EQ(s2.seqs[0].tokens.size(), 8u);
  const step_plan s3 = r.step();
  EXPECT_EQ(s3.seqs[0].start_pos, 16);
  EXPECT_EQ(s3.seqs[0].tokens, range_of(16, 4));
  EXPECT_EQ(s3.seqs[0].num_samples, 1);
  const step_plan s4 = r.step();
  EXPECT_EQ(s4.seqs[0].start_pos, 20);
  EXPECT_EQ(s4.seqs[0].tokens, std::vector<int32_t>{next_token(20)});
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 1u);
  EXPECT_EQ(r.finished[0].generated,
            (std::vector<int32_t>{next_token(20), next_token(21), next_token(22)}));
  EXPECT_EQ(r.finished[0].reason, finish_reason::length);
  EXPECT_TRUE(r.finished[0].request_done);
}

TEST(scheduler, decodes_come_before_prefills_and_prefills_fill_the_rest) {
  rig r(64, 4, cfg(10));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 5), 10)));
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(100, 5), 10)));
  r.step();  // both prompts: 10 tokens
  ASSERT_TRUE(r.sched.add_request(req(3, range_of(200, 30), 4)));
  const step_plan p = r.step();
  ASSERT_EQ(p.seqs.size(), 3u);
  EXPECT_EQ(p.seqs[0].request, 1);
  EXPECT_EQ(p.seqs[0].tokens.size(), 1u);
  EXPECT_EQ(p.seqs[1].request, 2);
  EXPECT_EQ(p.seqs[1].tokens.size(), 1u);
  EXPECT_EQ(p.seqs[2].request, 3);
  EXPECT_EQ(p.seqs[2].tokens.size(), 8u) << "the budget left after two decodes";
  EXPECT_EQ(p.num_tokens, 10);
  const step_plan q = r.step();
  ASSERT_EQ(q.seqs.size(), 3u);
  EXPECT_EQ(q.seqs[2].start_pos, 8) << "the chunked prefill goes on after the decodes";
  r.run_to_end();
  EXPECT_EQ(r.finished.size(), 3u);
}

TEST(scheduler, higher_priority_classes_are_admitted_first_fcfs_within_a_class) {
  rig r(64, 4, cfg(6));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 6), 1, /*priority=*/2)));
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(10, 6), 1, 1)));
  ASSERT_TRUE(r.sched.add_request(req(3, range_of(20, 6), 1, 0)));
  ASSERT_TRUE(r.sched.add_request(req(4, range_of(30, 6), 1, 1)));
  std::vector<request_id> order;
  for (int i = 0; i < 4; ++i) {
    const step_plan p = r.step();
    ASSERT_EQ(p.seqs.size(), 1u);
    order.push_back(p.seqs[0].request);
  }
  EXPECT_EQ(order, (std::vector<request_id>{3, 2, 4, 1}));
  EXPECT_EQ(r.finished.size(), 4u);
}

TEST(scheduler, max_running_caps_the_batch) {
  rig r(64, 4, cfg(100, 2));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(r.sched.add_request(req(i, range_of(10 * i, 3), 4)));
  const step_plan p = r.step();
  EXPECT_EQ(p.seqs.size(), 2u);
  EXPECT_EQ(r.sched.num_running(), 2u);
  EXPECT_EQ(r.sched.num_waiting(), 1u);
  r.run_to_end();
  EXPECT_EQ(r.finished.size(), 3u);
}

// A full batch makes room for a waiting request of a better class: the last running one of a worse
// class is preempted (and later recomputed); within a class a full batch just waits.
TEST(scheduler, a_better_class_takes_the_place_of_the_last_running_one_of_a_worse_class) {
  rig r(64, 4, cfg(100, 2));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 3), 6)));
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(10, 3), 6)));
  r.step();
  ASSERT_EQ(r.sched.num_running(), 2u);
  ASSERT_TRUE(r.sched.add_request(req(3, range_of(20, 3), 6)));  // same class: waits
  const step_plan same = r.step();
  EXPECT_TRUE(same.preempted.empty());
  EXPECT_EQ(r.sched.num_waiting(), 1u);
  ASSERT_TRUE(r.sched.add_request(req(4, range_of(30, 3), 6, /*priority=*/-1)));
  const step_plan p = r.step();
  ASSERT_EQ(p.preempted.size(), 1u);
  EXPECT_EQ(p.preempted[0], 2) << "the later arrival of the worse class goes";
  bool runs = false;
  for (const auto& q : p.seqs) runs |= q.request == 4;
  EXPECT_TRUE(runs) << "the better class runs in the same step";
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 4u);
  for (const finished_seq& f : r.finished) {
    ASSERT_EQ(f.generated.size(), 6u) << "request " << f.request;
    for (size_t j = 0; j < 6; ++j) EXPECT_EQ(f.generated[j], next_token(3 + int64_t(j))) << "request " << f.request;
  }
}

// A waiting request of a better class is planned before the prefill chunks of a worse class, and
// its step carries nothing else of that class but decodes, so a long prompt being prefilled in
// chunks does not hold the favoured request back step after step.
TEST(scheduler, a_better_class_is_planned_before_a_worse_class_prefill_chunk) {
  rig r(64, 4, cfg(8, 4));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 3), 6)));    // decoding from the next step
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(50, 40), 2)));  // prefilled in chunks
  const step_plan first = r.step();
  ASSERT_EQ(first.num_tokens, 8);
  ASSERT_TRUE(r.sched.add_request(req(3, range_of(100, 6), 2, /*priority=*/-1)));
  const step_plan p = r.step();
  ASSERT_EQ(p.seqs.size(), 2u);
  EXPECT_EQ(p.seqs[0].request, 1) << "the worse class's decode stays";
  EXPECT_EQ(p.seqs[0].tokens.size(), 1u);
  EXPECT_EQ(p.seqs[1].request, 3) << "the favoured request's whole prompt, and no chunk of request 2";
  EXPECT_EQ(p.seqs[1].tokens.size(), 6u);
  EXPECT_TRUE(p.preempted.empty());
  // Within a class, the running prefill keeps its place: a same-class arrival waits for the budget.
  ASSERT_TRUE(r.sched.add_request(req(4, range_of(200, 6), 2)));
  const step_plan same = r.step();
  ASSERT_FALSE(same.seqs.empty());
  bool chunk = false;
  for (const auto& q : same.seqs) {
    EXPECT_NE(q.request, 4) << "decodes and request 2's chunk fill the step";
    chunk |= q.request == 2;
  }
  EXPECT_TRUE(chunk);
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 4u);
}

TEST(scheduler, out_of_blocks_preempts_the_lowest_priority_latest_arrival_which_then_completes) {
  // 6 blocks of 4 tokens. Three requests of 4-token prompts and 8 new tokens each need 3 blocks
  // apiece at the end: all three cannot finish together.
  rig r(6, 4, cfg(64));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 4), 8, /*priority=*/0)));
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(10, 4), 8, 1)));
  ASSERT_TRUE(r.sched.add_request(req(3, range_of(20, 4), 8, 0)));
  std::vector<request_id> preempted;
  for (int i = 0; i < 200 && r.sched.has_unfinished(); ++i) {
    const step_plan p = r.step();
    for (seq_id s : p.preempted) {
      // Sequence ids follow admission here: request k has sequence k.
      preempted.push_back(s);
    }
  }
  EXPECT_FALSE(r.sched.has_unfinished());
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted[0], 2) << "priority 1 goes first, although request 3 arrived later";
  ASSERT_EQ(r.finished.size(), 3u);
  for (const finished_seq& f : r.finished) {
    ASSERT_EQ(f.generated.size(), 8u) << "request " << f.request;
    for (size_t j = 0; j < 8; ++j) EXPECT_EQ(f.generated[j], next_token(4 + int64_t(j))) << "request " << f.request;
  }
  EXPECT_GE(r.sched.num_preemptions(), 1);
  EXPECT_EQ(r.pool.num_free(), 6);
}

TEST(scheduler, among_equal_priorities_the_latest_arrival_is_preempted) {
  rig r(6, 4, cfg(64));
  for (int i = 1; i <= 3; ++i) ASSERT_TRUE(r.sched.add_request(req(i, range_of(10 * i, 4), 8)));
  std::vector<seq_id> preempted;
  for (int i = 0; i < 200 && r.sched.has_unfinished(); ++i) {
    const step_plan p = r.step();
    preempted.insert(preempted.end(), p.preempted.begin(), p.preempted.end());
  }
  EXPECT_FALSE(r.sched.has_unfinished());
  ASSERT_FALSE(preempted.empty());
  EXPECT_EQ(preempted[0], 3);
  EXPECT_EQ(r.finished.size(), 3u);
}

TEST(scheduler, abort_frees_blocks_at_once_and_is_reported_next_step) {
  rig r(16, 4, cfg(64));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 10), 20)));
  ASSERT_TRUE(r.sched.add_request(req(2, range_of(50, 3), 20)));
  r.step();
  r.step();
  EXPECT_EQ(r.pool.num_free(), 16 - 3 - 1);
  EXPECT_TRUE(r.sched.abort(1));
  EXPECT_EQ(r.pool.num_free(), 16 - 1);
  check_pool(r.kv);
  EXPECT_FALSE(r.sched.abort(1)) << "already gone";
  const step_plan p = r.step();
  EXPECT_EQ(p.aborted, std::vector<request_id>{1});
  ASSERT_EQ(p.seqs.size(), 1u);
  EXPECT_EQ(p.seqs[0].request, 2);
  EXPECT_TRUE(r.step().aborted.empty());
  EXPECT_TRUE(r.sched.abort(2));
  EXPECT_FALSE(r.sched.has_unfinished());
  EXPECT_EQ(r.pool.num_free(), 16);
}

TEST(scheduler, abort_between_schedule_and_update_is_safe) {
  rig r(16, 4, cfg(64));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 5), 4)));
  const step_plan p = r.sched.schedule();
  const auto out = r.model.run(r.sched, p);
  EXPECT_TRUE(r.sched.abort(1));
  auto u = r.sched.update(out);
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->finished.empty());
  EXPECT_EQ(r.pool.num_free(), 16);
}

TEST(scheduler, update_needs_every_sample) {
  rig r(16, 4, cfg(64));
  ASSERT_TRUE(r.sched.add_request(req(7, range_of(0, 5), 4)));
  const step_plan p = r.sched.schedule();
  auto u = r.sched.update({});
  ASSERT_FALSE(u);
  EXPECT_EQ(u.message(), "scheduler: update: sequence 1 needs 1 sampled tokens, got 0");
}

TEST(scheduler, a_stop_token_ends_a_sequence) {
  rig r(16, 4, cfg(64));
  request q = req(1, range_of(0, 5), 10);
  q.stop.token_ids = {next_token(7)};
  ASSERT_TRUE(r.sched.add_request(q));
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 1u);
  EXPECT_EQ(r.finished[0].reason, finish_reason::stop);
  EXPECT_EQ(r.finished[0].generated, (std::vector<int32_t>{next_token(5), next_token(6), next_token(7)}));
}

TEST(scheduler, n_samples_fork_after_the_prompt_and_copy_the_shared_partial_block) {
  rig r(32, 4, cfg(64));
  ASSERT_TRUE(r.sched.add_request(req(1, range_of(0, 6), 3, 0, /*n=*/3)));
  const step_plan p1 = r.step();
  ASSERT_EQ(p1.seqs.size(), 1u);
  EXPECT_EQ(p1.seqs[0].num_samples, 3);
  ASSERT_EQ(r.forks.size(), 2u);
  EXPECT_EQ(r.sched.num_running(), 3u);
  const int32_t shared_partial = p1.seqs[0].block_table[1];
  EXPECT_EQ(r.pool.ref_count(shared_partial), 3);
  const step_plan p2 = r.step();
  EXPECT_EQ(p2.seqs.size(), 3u);
  EXPECT_EQ(p2.copies.size(), 2u) << "two of the three write a copy, the last one the original";
  for (const block_copy& c : p2.copies) EXPECT_EQ(c.src, shared_partial);
  r.run_to_end();
  ASSERT_EQ(r.finished.size(), 3u);
  int done = 0;
  for (const finished_seq& f : r.finished) {
    ASSERT_EQ(f.generated.size(), 3u);
    EXPECT_EQ(f.generated[1], next_token(7));
    done += f.request_done ? 1 : 0;
  }
  EXPECT_EQ(done, 1);
  EXPECT_EQ(r.pool.num_free(), 32);
}

TEST(scheduler, a_second_request_reuses_the_cached_prefix) {
  rig r(32, 4, cfg(64));
  const auto system = range_of(500, 16);
  auto a = system;
  a.push_back(1);
  auto b = system;
  b.push_back(2);
  b.push_back(3);
  ASSERT_TRUE(r.sched.add_request(req(1, a, 2)));
  r.run_to_end();
  ASSERT_TRUE(r.sched.add_request(req(2, b, 2)));
  const step_plan p = r.step();
  ASSERT_EQ(p.seqs.size(), 1u);
  EXPECT_EQ(p.seqs[0].start_pos, 16);
  EXPECT_EQ(p.seqs[0].tokens, (std::vector<int32_t>{2, 3}));
  r.run_to_end();
  const kv_cache_stats st = r.kv.stats();
  EXPECT_EQ(st.prefix_queries, 2);
  EXPECT_EQ(st.prefix_hit_tokens, 16);
}

}  // namespace
}  // namespace troupe::engine
