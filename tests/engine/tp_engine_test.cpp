// The continuous-batching engine as rank 0 of a shard group: it broadcasts each step's plan and
// Gloo thread ranks (run_follower) run it on their shards. The group's outputs equal tp = 1's for a
// batch with chunked prefill and preemption; a rank that dies or hangs fails the group's requests
// within the timeout; a malformed plan header is an error at the rank, never a crash.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <random>
#include <thread>

#include "engine/cpu_backend.hpp"
#include "engine/llm_engine.hpp"
#include "engine/executor/step_broadcast.hpp"
#include "engine/executor/follower.hpp"
#include "engine/executor/tp_forward.hpp"
#include "tests/engine/parallel/thread_ranks.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using namespace std::chrono_literals;
using ids = std::vector<int32_t>;
using parallel::test::run_thread_ranks;
using parallel::test::seconds_since;

tiny_model_spec spec(int64_t kv_heads) { return test::tp_spec("llama", kv_heads, 40 + uint64_t(kv_heads)); }

std::shared_ptr<const model> load(int64_t kv_heads) {
  auto m = load_model(test::tiny_model("tp_engine_kv" + std::to_string(kv_heads), spec(kv_heads)));
  EXPECT_TRUE(m) << m.message();
  return m ? *m : nullptr;
}

constexpr int64_t step_tokens = 24;  // prompts of up to 40 tokens prefill in chunks

// An engine over `fwd` whose pool holds `blocks` blocks of 16 positions of this (shard) model.
expected<std::unique_ptr<llm_engine>> make_engine(llama_forward& fwd, int64_t blocks, parallel::communicator* group) {
  const model_config& c = fwd.config();
  engine_config cfg;
  cfg.block_size = 16;
  cfg.kv_memory_bytes = blocks * c.n_layers * 2 * 16 * c.kv_dim() * int64_t(sizeof(float));
  cfg.max_batched_tokens = step_tokens;
  cfg.max_running = 16;
  cfg.model_revision = "tp_engine";
  std::unique_ptr<step_executor> executor;
  if (group != nullptr) {
    auto g = make_group_executor(fwd, *group);
    if (!g) return g.err();
    executor = std::move(*g);
  }
  return llm_engine::create(fwd, cfg, {}, std::move(executor));
}

// 12 greedy requests of 3 .. 40 prompt tokens and 20 new tokens each.
std::vector<request> workload(int64_t vocab) {
  std::mt19937 g(9);
  std::vector<request> out;
  for (int i = 0; i < 12; ++i) {
    request r;
    r.prompt.resize(size_t(3 + (i * 7) % 38));
    for (auto& t : r.prompt) t = int32_t(g() % uint32_t(vocab));
    r.max_tokens = 20;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    out.push_back(std::move(r));
  }
  return out;
}

struct run_result {
  std::map<int64_t, ids> tokens;              // by request id (ids are given in add order)
  std::map<int64_t, std::string> finishes;    // by request id
  std::map<int64_t, std::string> errors;
  int64_t preemptions = 0;
  std::string failure;                        // the engine's group_failure(), if any
};

// Steps until every request ended; `on_step` runs before each step (0, 1, ...).
run_result run_all(llm_engine& e, const std::vector<request>& reqs,
                   const std::function<void(int)>& on_step = {}) {
  run_result out;
  for (const auto& r : reqs) {
    auto id = e.add_request(r);
    EXPECT_TRUE(id) << id.message();
  }
  for (int step = 0; e.has_unfinished() && step < 10'000; ++step) {
    if (on_step) on_step(step);
    for (auto& o : e.step()) {
      auto& t = out.tokens[o.request];
      t.insert(t.end(), o.tokens.begin(), o.tokens.end());
      if (o.finish) {
        EXPECT_EQ(out.finishes.count(o.request), 0u) << "request " << o.request << " finished twice";
        out.finishes[o.request] = to_string(*o.finish);
        if (!o.error.empty()) out.errors[o.request] = o.error;
      }
    }
  }
  out.preemptions = e.stats().preemptions;
  if (e.group_failure()) out.failure = *e.group_failure();
  return out;
}

// A follower rank: its shard's forward pass and the leader's steps until stop.
std::string follow(const std::shared_ptr<const model>& m, parallel::communicator& comm) {
  auto be = make_cpu_backend(1);
  auto f = create_tp_forward(m, *be, step_tokens, comm);
  if (!f) return "create: " + f.message();
  auto done = run_follower(**f, comm);
  return done ? std::string() : "follower: " + done.message();
}

struct tp_engine_case {
  int64_t kv_heads;
  int tp;
};
void PrintTo(const tp_engine_case& c, std::ostream* os) { *os << "kv" << c.kv_heads << "_tp" << c.tp; }

class tp_engine : public ::testing::TestWithParam<tp_engine_case> {};

TEST_P(tp_engine, a_batch_with_chunked_prefill_and_preemption_gives_the_tokens_of_tp1) {
  const auto [kv_heads, tp] = GetParam();
  auto m = load(kv_heads);
  ASSERT_TRUE(m);
  const auto reqs = workload(m->config.vocab_size);
  // tp = 1: 12 blocks for 12 requests of up to 4 blocks each forces preemption.
  auto be = make_cpu_backend(1);
  auto whole = llama_forward::create(m, *be, step_tokens);
  ASSERT_TRUE(whole) << whole.message();
  auto alone = make_engine(**whole, 12, nullptr);
  ASSERT_TRUE(alone) << alone.message();
  const run_result want = run_all(**alone, reqs);
  ASSERT_EQ(want.tokens.size(), reqs.size());
  EXPECT_GT(want.preemptions, 0) << "the pool was meant to run out";

  run_result got;
  auto reports = run_thread_ranks(tp, 20s, [&](parallel::communicator& comm) {
    if (comm.rank() != 0) return follow(m, comm);
    auto rank_be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *rank_be, step_tokens, comm);
    if (!f) return "create: " + f.message();
    auto e = make_engine(**f, 12, &comm);
    if (!e) return "engine: " + e.message();
    got = run_all(**e, reqs);
    return std::string();  // destroying the engine sends the followers stop
  });
  for (size_t r = 0; r < reports.size(); ++r) EXPECT_EQ(reports[r], "") << "rank " << r;
  EXPECT_EQ(got.failure, "");
  EXPECT_GT(got.preemptions, 0);
  EXPECT_TRUE(got.errors.empty());
  for (const auto& [id, tokens] : want.tokens) {
    EXPECT_EQ(got.tokens[id], tokens) << "request " << id;
    EXPECT_EQ(got.finishes[id], "length") << "request " << id;
  }
}

// kv heads split (kv4 at tp 2 and 4, kv2 at tp 2) and replicated (kv2 at tp 4).
INSTANTIATE_TEST_SUITE_P(gqa, tp_engine,
                         ::testing::Values(tp_engine_case{2, 2}, tp_engine_case{2, 4}, tp_engine_case{4, 2},
                                           tp_engine_case{4, 4}),
                         [](const ::testing::TestParamInfo<tp_engine_case>& info) {
                           return "kv" + std::to_string(info.param.kv_heads) + "_tp" + std::to_string(info.param.tp);
                         });

// How rank 1 misbehaves after following `steps` messages.
enum class rank_fault { dies, hangs };

// Rank 1 follows a few steps, then dies (its communicator closes) or hangs (stops taking part but
// keeps its connections). The leader's requests all end with the group's error, and the engine
// reports the failure, within the 1 s timeout (a death is noticed at once).
void expect_group_fails(rank_fault fault) {
  auto m = load(2);
  ASSERT_TRUE(m);
  auto reqs = workload(m->config.vocab_size);
  for (auto& r : reqs) r.max_tokens = 80;  // long enough to be running when the rank fails
  std::atomic<bool> faulted{false};
  std::chrono::steady_clock::time_point faulted_at;
  run_result got;
  double seconds_to_fail = -1;
  auto reports = run_thread_ranks(2, 1s, [&](parallel::communicator& comm) {
    auto be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *be, step_tokens, comm);
    if (!f) return "create: " + f.message();
    if (comm.rank() == 1) {
      auto setup = receive_group_message(comm);
      if (!setup) return "setup: " + setup.message();
      auto kv = (*f)->new_paged_kv(setup->num_blocks, setup->block_size);
      if (!kv) return kv.message();
      for (int i = 0; i < 6; ++i) {
        auto msg = receive_group_message(comm);
        if (!msg) return "step: " + msg.message();
        if (msg->kind == group_message_kind::step) (void)run_step_batch(**f, **kv, msg->batch, {}, {});
      }
      faulted_at = std::chrono::steady_clock::now();
      faulted = true;
      if (fault == rank_fault::hangs) std::this_thread::sleep_for(3s);
      return std::string();  // returning closes this rank's communicator: it died
    }
    auto e = make_engine(**f, 64, &comm);
    if (!e) return "engine: " + e.message();
    got = run_all(**e, reqs);
    seconds_to_fail = seconds_since(faulted_at);
    return std::string();
  });
  EXPECT_EQ(reports[0], "");
  EXPECT_EQ(reports[1], "");
  ASSERT_TRUE(faulted);
  EXPECT_NE(got.failure.find("shard group failed"), std::string::npos) << got.failure;
  EXPECT_LT(seconds_to_fail, 2.5) << "the group took too long to fail";
  ASSERT_EQ(got.finishes.size(), reqs.size()) << "a request never ended";
  for (const auto& [id, finish] : got.finishes) {
    EXPECT_EQ(finish, "error") << "request " << id;
    EXPECT_NE(got.errors[id].find("shard group failed"), std::string::npos) << got.errors[id];
  }
}

TEST(tp_engine_failure, a_rank_that_dies_mid_run_fails_every_request_with_the_groups_error) {
  expect_group_fails(rank_fault::dies);
}

TEST(tp_engine_failure, a_rank_that_hangs_fails_the_group_within_the_timeout) {
  expect_group_fails(rank_fault::hangs);
}

TEST(tp_engine_failure, an_idle_leader_keeps_its_ranks_alive_and_notices_a_dead_one) {
  auto m = load(2);
  ASSERT_TRUE(m);
  std::string alive_error = "not run", dead_error;
  auto reports = run_thread_ranks(2, 1s, [&](parallel::communicator& comm) {
    auto be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *be, step_tokens, comm);
    if (!f) return "create: " + f.message();
    if (comm.rank() == 1) {
      // Follows through 2.5 s of keepalives (longer than the 1 s timeout), then dies.
      for (int i = 0; i < 6; ++i) {
        auto msg = receive_group_message(comm);
        if (!msg) return "keepalive " + std::to_string(i) + ": " + msg.message();
      }
      return std::string();
    }
    auto e = make_engine(**f, 64, &comm);
    if (!e) return "engine: " + e.message();
    alive_error.clear();
    for (int i = 0; i < 5; ++i) {
      std::this_thread::sleep_for(500ms);
      if (auto ok = (*e)->keep_group_alive(); !ok) alive_error += ok.message();
    }
    std::this_thread::sleep_for(200ms);  // rank 1 has returned and closed its connections
    for (int i = 0; i < 3 && !(*e)->group_failure(); ++i) (void)(*e)->keep_group_alive();
    dead_error = (*e)->group_failure().value_or("");
    return std::string();
  });
  EXPECT_EQ(reports[0], "");
  EXPECT_EQ(reports[1], "");
  EXPECT_EQ(alive_error, "");
  EXPECT_NE(dead_error.find("shard group failed"), std::string::npos) << dead_error;
}

TEST(tp_group_messages, a_header_that_is_not_a_step_is_an_error_at_the_rank) {
  std::string garbage_error, negative_error;
  auto reports = run_thread_ranks(2, 5s, [&](parallel::communicator& comm) {
    std::array<int32_t, 9> header{};  // the size of step_broadcast.cpp's header
    auto bytes = std::span<std::byte>(reinterpret_cast<std::byte*>(header.data()), sizeof header);
    if (comm.rank() == 0) {
      header.fill(0x41414141);  // not our magic
      if (auto ok = comm.broadcast(bytes, 0); !ok) return ok.message();
      header.fill(-5);
      header[0] = 0x54525047;  // our magic, a valid kind, negative lengths
      header[1] = 2;
      return comm.broadcast(bytes, 0) ? std::string() : std::string("second broadcast failed");
    }
    auto first = receive_group_message(comm);
    garbage_error = first ? "accepted" : first.message();
    auto second = receive_group_message(comm);
    negative_error = second ? "accepted" : second.message();
    return std::string();
  });
  EXPECT_EQ(reports[0], "");
  EXPECT_EQ(reports[1], "");
  EXPECT_NE(garbage_error.find("wrong magic"), std::string::npos) << garbage_error;
  EXPECT_NE(negative_error.find("negative array length"), std::string::npos) << negative_error;
}

TEST(tp_group_messages, a_setup_carries_the_cache_and_the_leaders_graph_width) {
  group_message got;
  auto reports = run_thread_ranks(2, 5s, [&](parallel::communicator& comm) {
    if (comm.rank() == 0) {
      group_message setup;
      setup.kind = group_message_kind::setup;
      setup.num_blocks = 1234;
      setup.block_size = 16;
      setup.graph_max_batch = 48;
      auto ok = send_group_message(comm, setup);
      return ok ? std::string() : ok.message();
    }
    auto m = receive_group_message(comm);
    if (!m) return m.message();
    got = *m;
    return std::string();
  });
  EXPECT_EQ(reports[0], "");
  EXPECT_EQ(reports[1], "");
  EXPECT_EQ(got.kind, group_message_kind::setup);
  EXPECT_EQ(got.num_blocks, 1234);
  EXPECT_EQ(got.block_size, 16);
  EXPECT_EQ(got.graph_max_batch, 48);
}

TEST(tp_group_messages, a_step_batch_that_does_not_add_up_is_refused_before_it_runs) {
  step_batch b;
  b.tokens = {1, 2};
  b.pos = {0};
  b.token_seq = {0, 0};
  EXPECT_NE(validate(b, 8).message().find("differ in length"), std::string::npos);
  b.pos = {0, 1};
  EXPECT_NE(validate(b, 8).message().find("without block tables"), std::string::npos);
  b.add_table(std::vector<int32_t>{3});
  EXPECT_TRUE(validate(b, 8));
  b.token_seq = {0, 1};
  EXPECT_NE(validate(b, 8).message().find("names no sequence"), std::string::npos);
  b.token_seq = {0, 0};
  b.copies = {1, 9};
  EXPECT_NE(validate(b, 8).message().find("outside the cache"), std::string::npos);
  b.copies = {1};
  EXPECT_NE(validate(b, 8).message().find("pairs"), std::string::npos);
  b.copies.clear();
  b.table_offsets = {0, 2};
  EXPECT_NE(validate(b, 8).message().find("do not span"), std::string::npos);
}

}  // namespace
}  // namespace troupe::engine
