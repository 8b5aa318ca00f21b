// The continuous-batching engine end to end on a real (tiny, random-weight) model: greedy outputs
// of a request alone equal its outputs inside a batch of 32 with mixed prompt lengths, chunked
// prefill and preemption forced by a tiny KV pool; prefix caching reuses blocks without changing
// outputs; abort frees blocks at once; n > 1; the pool is whole again when everything ended.
#include <gtest/gtest.h>

#include <map>
#include <random>

#include "engine/cpu_backend.hpp"
#include "engine/llm_engine.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using ids = std::vector<int32_t>;

class llm_engine_test : public ::testing::Test {
 protected:
  void SetUp() override {
    auto loaded = test::load_cpu_forward("engine_llama", test::small_spec(), 64);
    ASSERT_TRUE(loaded.fwd);
    model_ = std::move(loaded.model);
    be_ = std::move(loaded.be);
    fwd_ = std::move(loaded.fwd);
  }

  // An engine whose pool holds `blocks` blocks of 16 tokens.
  std::unique_ptr<llm_engine> make(int64_t blocks, int64_t max_batched_tokens = 64, bool prefix_caching = true) {
    const model_config& c = model_->config;
    engine_config cfg;
    cfg.block_size = 16;
    cfg.kv_memory_bytes = blocks * c.n_layers * 2 * 16 * c.kv_dim() * int64_t(sizeof(float));
    cfg.max_batched_tokens = max_batched_tokens;
    cfg.max_running = 64;
    cfg.prefix_caching = prefix_caching;
    cfg.model_revision = "engine_llama";
    auto e = llm_engine::create(*fwd_, cfg, {});
    EXPECT_TRUE(e) << e.message();
    return e ? std::move(*e) : nullptr;
  }

  static request greedy(ids prompt, int32_t max_tokens) {
    request r;
    r.prompt = std::move(prompt);
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    return r;
  }

  ids random_prompt(size_t n, uint32_t seed) const {
    std::mt19937 g(seed);
    ids t(n);
    for (auto& x : t) x = int32_t(g() % uint32_t(model_->config.vocab_size));
    return t;
  }

  // Runs until every request ended; returns each (request, sample)'s tokens and finish.
  struct result {
    ids tokens;
    std::optional<finish_reason> finish;
  };
  static std::map<std::pair<int64_t, int32_t>, result> drain(llm_engine& e, int max_steps = 10000) {
    std::map<std::pair<int64_t, int32_t>, result> out;
    for (int step = 0; e.has_unfinished() && step < max_steps; ++step) {
      for (const request_output& o : e.step()) {
        auto& r = out[std::make_pair(o.request, o.sample)];
        EXPECT_FALSE(r.finish) << "output after finish for request " << o.request;
        r.tokens.insert(r.tokens.end(), o.tokens.begin(), o.tokens.end());
        if (o.finish) r.finish = o.finish;
      }
    }
    EXPECT_FALSE(e.has_unfinished()) << "the engine did not finish";
    return out;
  }

  std::shared_ptr<const model> model_;
  std::unique_ptr<backend> be_;
  std::unique_ptr<llama_forward> fwd_;
};

TEST_F(llm_engine_test, a_batch_of_32_with_preemption_gives_each_requests_own_output) {
  // 32 prompts of 3..70 tokens, 6..20 new tokens each.
  std::vector<request> requests;
  for (uint32_t i = 0; i < 32; ++i)
    requests.push_back(greedy(random_prompt(3 + (i * 37) % 68, 100 + i), int32_t(6 + i % 15)));

  // Alone: each request on its own in a roomy engine.
  std::vector<ids> alone;
  for (const auto& r : requests) {
    auto e = make(64);
    ASSERT_TRUE(e);
    auto id = e->add_request(r);
    ASSERT_TRUE(id) << id.message();
    auto out = drain(*e);
    alone.push_back(out[std::make_pair(*id, int32_t(0))].tokens);
    EXPECT_EQ(alone.back().size(), size_t(r.max_tokens));
  }

  // Together: a pool of 16 blocks (256 tokens, ~one long request and change), 48 tokens per step:
  // chunked prefill and many preemptions.
  auto e = make(16, 48);
  ASSERT_TRUE(e);
  std::vector<int64_t> ids_of;
  for (const auto& r : requests) {
    auto id = e->add_request(r);
    ASSERT_TRUE(id) << id.message();
    ids_of.push_back(*id);
  }
  auto out = drain(*e);
  EXPECT_GT(e->stats().preemptions, 0) << "the pool was meant to force preemption";
  for (size_t i = 0; i < requests.size(); ++i) {
    const result& r = out[{ids_of[i], 0}];
    EXPECT_EQ(r.tokens, alone[i]) << "request " << i;
    EXPECT_EQ(r.finish, finish_reason::length);
  }
  EXPECT_EQ(e->stats().kv_blocks_used, 0) << "blocks leaked";
}

TEST_F(llm_engine_test, prefix_caching_reuses_blocks_and_changes_nothing) {
  const ids shared = random_prompt(64, 7);
  ids a = shared, b = shared;
  const ids ta = random_prompt(5, 8), tb = random_prompt(9, 9);
  a.insert(a.end(), ta.begin(), ta.end());
  b.insert(b.end(), tb.begin(), tb.end());

  std::vector<ids> outputs[2];
  double hit_rate[2] = {0, 0};
  for (const bool caching : {true, false}) {
    auto e = make(32, 64, caching);
    ASSERT_TRUE(e);
    for (const ids& prompt : {a, b}) {  // one after the other: the second finds the first's blocks
      auto id = e->add_request(greedy(prompt, 8));
      ASSERT_TRUE(id) << id.message();
      auto out = drain(*e);
      outputs[caching].push_back(out[std::make_pair(*id, int32_t(0))].tokens);
    }
    hit_rate[caching] = e->stats().prefix_hit_rate;
    EXPECT_EQ(e->stats().kv_blocks_used, 0);
  }
  EXPECT_EQ(outputs[1], outputs[0]);
  EXPECT_GT(hit_rate[1], 0.3) << "the shared 64 tokens (4 blocks) should have been hits";
  EXPECT_EQ(hit_rate[0], 0.0);
}

TEST_F(llm_engine_test, abort_frees_blocks_at_once_and_is_reported) {
  auto e = make(32);
  ASSERT_TRUE(e);
  auto a = e->add_request(greedy(random_prompt(40, 11), 50));
  auto b = e->add_request(greedy(random_prompt(20, 12), 5));
  ASSERT_TRUE(a && b);
  (void)e->step();
  (void)e->step();
  const int32_t used = e->stats().kv_blocks_used;
  ASSERT_GT(used, 0);
  EXPECT_TRUE(e->abort(*a));
  EXPECT_LT(e->stats().kv_blocks_used, used) << "abort must free the request's blocks at once";
  EXPECT_FALSE(e->abort(*a)) << "a second abort of the same id";
  auto out = drain(*e);
  EXPECT_EQ(out[std::make_pair(*a, int32_t(0))].finish, finish_reason::abort);
  EXPECT_EQ(out[std::make_pair(*b, int32_t(0))].finish, finish_reason::length);
  EXPECT_EQ(e->stats().kv_blocks_used, 0);
}

TEST_F(llm_engine_test, parallel_samples_share_the_prompt) {
  auto e = make(32);
  ASSERT_TRUE(e);
  request r = greedy(random_prompt(30, 13), 6);
  r.n = 3;
  auto id = e->add_request(r);
  ASSERT_TRUE(id) << id.message();
  auto out = drain(*e);
  ASSERT_EQ(out.size(), 3u);
  // Greedy: the three samples are the same continuation, and equal the n = 1 output.
  auto single = make(32);
  auto sid = single->add_request(greedy(r.prompt, 6));
  ASSERT_TRUE(sid);
  const ids one = drain(*single)[std::make_pair(*sid, int32_t(0))].tokens;
  for (int32_t k = 0; k < 3; ++k) {
    EXPECT_EQ(out[std::make_pair(*id, int32_t(k))].tokens, one) << "sample " << k;
    EXPECT_EQ(out[std::make_pair(*id, int32_t(k))].finish, finish_reason::length);
  }
  EXPECT_EQ(e->stats().kv_blocks_used, 0);
}

// Random arrivals, lengths, shared prefixes, priorities, n > 1 and aborts on a small pool: every
// request ends exactly once, no sample gets more than max_tokens, and the pool is whole at the end.
TEST_F(llm_engine_test, randomized_arrivals_and_aborts_leave_no_leak) {
  auto e = make(20, 40);
  ASSERT_TRUE(e);
  std::mt19937 g(2024);
  const ids shared = random_prompt(32, 77);
  std::map<int64_t, request> live;
  std::map<int64_t, int> finished;  // request -> finished samples
  std::map<std::pair<int64_t, int32_t>, size_t> produced;
  for (int step = 0; step < 400 && (step < 200 || e->has_unfinished()); ++step) {
    if (step < 200 && g() % 3 == 0) {
      ids prompt = g() % 2 ? shared : ids{};
      const ids tail = random_prompt(1 + g() % 40, g());
      prompt.insert(prompt.end(), tail.begin(), tail.end());
      request r = greedy(prompt, int32_t(1 + g() % 24));
      r.priority = int32_t(g() % 3);
      r.n = g() % 5 == 0 ? 2 : 1;
      if (g() % 4 == 0) {
        r.sampling.temperature = 0.8f;
        r.sampling.seed = g();
      }
      auto id = e->add_request(r);
      ASSERT_TRUE(id) << id.message();
      live[*id] = r;
    }
    if (!live.empty() && g() % 9 == 0) {
      auto it = std::next(live.begin(), long(g() % live.size()));
      if (!finished.count(it->first)) {
        EXPECT_TRUE(e->abort(it->first));
      }
    }
    for (const request_output& o : e->step()) {
      size_t& n = produced[std::make_pair(o.request, o.sample)];
      n += o.tokens.size();
      ASSERT_TRUE(live.count(o.request)) << "output for an unknown request";
      EXPECT_LE(n, size_t(live[o.request].max_tokens));
      if (o.finish) {
        if (*o.finish == finish_reason::abort) {
          finished[o.request] = live[o.request].n;
        } else {
          ++finished[o.request];
        }
      }
    }
    const engine_stats st = e->stats();
    EXPECT_LE(st.kv_blocks_used, st.kv_blocks_total);
  }
  EXPECT_FALSE(e->has_unfinished());
  for (const auto& [id, r] : live) EXPECT_EQ(finished[id], r.n) << "request " << id;
  EXPECT_EQ(e->stats().kv_blocks_used, 0) << "blocks leaked";
  EXPECT_GT(e->stats().preemptions, 0);
  EXPECT_GT(e->stats().prefix_hit_rate, 0.0);
}

TEST_F(llm_engine_test, bad_requests_and_sizes_are_clear_errors) {
  auto e = make(32);
  ASSERT_TRUE(e);
  request r = greedy({1, 2, int32_t(model_->config.vocab_size)}, 4);
  auto bad_id = e->add_request(r);
  ASSERT_FALSE(bad_id);
  EXPECT_NE(bad_id.message().find("outside the vocabulary"), std::string::npos) << bad_id.message();
  r = greedy({1, 2}, 4);
  r.sampling.top_p = 0;
  auto bad_p = e->add_request(r);
  ASSERT_FALSE(bad_p);
  EXPECT_NE(bad_p.message().find("top_p"), std::string::npos) << bad_p.message();
  auto too_long = e->add_request(greedy(random_prompt(120, 1), 20));  // context is 128
  ASSERT_FALSE(too_long);
  EXPECT_NE(too_long.message().find("128"), std::string::npos) << too_long.message();

  // A share of the available memory sizes the cache too; outside (0, 1] is an error.
  engine_config share;
  share.kv_memory_fraction = 0.01;
  auto shared = llm_engine::create(*fwd_, share, {});
  ASSERT_TRUE(shared) << shared.message();
  EXPECT_GE((*shared)->stats().kv_capacity_tokens, model_->config.max_position);
  share.kv_memory_fraction = 1.5;
  auto too_much = llm_engine::create(*fwd_, share, {});
  ASSERT_FALSE(too_much);
  EXPECT_NE(too_much.message().find("--kv-memory-fraction"), std::string::npos) << too_much.message();

  engine_config tiny;
  tiny.kv_memory_bytes = 1024;
  auto small = llm_engine::create(*fwd_, tiny, {});
  ASSERT_FALSE(small);
  EXPECT_NE(small.message().find("--kv-memory"), std::string::npos) << small.message();
}

}  // namespace
}  // namespace troupe::engine
