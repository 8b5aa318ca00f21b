// Tensor-parallel forward pass on CPU: tp = 2 and 4 Gloo thread ranks, each running its Megatron
// shard, give the greedy tokens and logits of the whole model (tp = 1); errors are values.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <future>
#include <random>

#include "engine/cpu_backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/parallel/communicator.hpp"
#include "engine/executor/tp_forward.hpp"
#include "tests/engine/parallel/thread_ranks.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using test::rel_error;

using namespace std::chrono_literals;
using ids = std::vector<int32_t>;

struct tp_case {
  std::string name;
  tiny_model_spec spec;
  int tp = 2;
};
void PrintTo(const tp_case& c, std::ostream* os) { *os << c.name << "_tp" << c.tp; }

tiny_model_spec spec(const std::string& arch, int64_t kv_heads, uint64_t seed) {
  return test::tp_spec(arch, kv_heads, seed);
}

std::shared_ptr<const model> load(const tp_case& c) {
  auto m = load_model(test::tiny_model("tp_" + c.name, c.spec));
  EXPECT_TRUE(m) << m.message();
  return m ? *m : nullptr;
}

constexpr int steps = 16;
constexpr int64_t chunk = 8;  // the 11-token prompt runs in two chunks

ids prompt(int64_t vocab) {
  std::mt19937 g(5);
  ids t(11);
  for (auto& x : t) x = int32_t(g() % uint32_t(vocab));
  return t;
}

// The greedy continuation of the prompt: the logits of every step and the tokens they pick.
struct greedy_run {
  ids tokens;
  std::vector<std::vector<float>> logits;
  size_t kv_bytes_per_token = 0;
};

expected<greedy_run> run_greedy(llama_forward& f) {
  const model_config& c = f.config();
  auto kv = f.new_kv(c.max_position);
  if (!kv) return kv.err();
  greedy_run out;
  out.kv_bytes_per_token = (*kv)->bytes_per_token();
  ids input = prompt(c.vocab_size);
  int64_t pos = 0;
  std::vector<float> logits(size_t(c.vocab_size));
  for (int s = 0; s < steps; ++s) {
    if (auto r = f.forward(input, pos, **kv, logits); !r) return r.err();
    pos += int64_t(input.size());
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.logits.push_back(logits);
    out.tokens.push_back(next);
    input = {next};
  }
  return out;
}

expected<greedy_run> whole_model_run(std::shared_ptr<const model> m) {
  auto be = make_cpu_backend(1);
  auto f = llama_forward::create(std::move(m), *be, chunk);
  if (!f) return f.err();
  return run_greedy(**f);
}

// What a rank found wrong against the whole model's run, or "".
std::string compare(const greedy_run& got, const greedy_run& want) {
  for (size_t s = 0; s < want.tokens.size(); ++s) {
    const double e = rel_error(got.logits[s], want.logits[s]);
    if (e > 1e-4) return "step " + std::to_string(s) + ": logits differ by " + std::to_string(e) + " relative";
    if (got.tokens[s] != want.tokens[s])
      return "step " + std::to_string(s) + ": token " + std::to_string(got.tokens[s]) + ", want " +
             std::to_string(want.tokens[s]);
  }
  return "";
}

class tp_forward : public ::testing::TestWithParam<tp_case> {};

TEST_P(tp_forward, thread_ranks_match_the_whole_model) {
  const tp_case& tc = GetParam();
  auto m = load(tc);
  ASSERT_TRUE(m);
  auto want = whole_model_run(m);
  ASSERT_TRUE(want) << want.message();
  const model_config& c = m->config;
  const int64_t local_kv_heads = std::max<int64_t>(1, c.n_kv_heads / tc.tp);
  std::vector<std::vector<float>> last(size_t(tc.tp));
  auto reports = parallel::test::run_thread_ranks(tc.tp, 20s, [&](parallel::communicator& comm) {
    auto be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *be, chunk, comm);
    if (!f) return "create: " + f.message();
    if ((*f)->config().n_heads != c.n_heads / tc.tp || (*f)->config().n_kv_heads != local_kv_heads ||
        (*f)->config().ffn_dim != c.ffn_dim / tc.tp)
      return std::string("the rank's config is not its shard's");
    auto got = run_greedy(**f);
    if (!got) return "forward: " + got.message();
    // The rank's KV store holds only its kv heads: K and V, every layer, f32.
    const size_t kv_bytes = size_t(c.n_layers * 2 * local_kv_heads * c.head_dim) * sizeof(float);
    if (got->kv_bytes_per_token != kv_bytes)
      return "KV bytes per token " + std::to_string(got->kv_bytes_per_token) + ", want " + std::to_string(kv_bytes);
    last[size_t(comm.rank())] = got->logits.back();
    return compare(*got, *want);
  });
  for (size_t r = 0; r < reports.size(); ++r) EXPECT_EQ(reports[r], "") << "rank " << r;
  // Ring all-reduce gives every rank the same sums, so every rank's logits are the same bits.
  for (size_t r = 1; r < last.size(); ++r) EXPECT_EQ(last[r], last[0]) << "rank " << r;
}

// 8 heads throughout; kv heads split (kv4 at tp 2 and 4, kv2 at tp 2) or replicated (kv2 at tp 4).
INSTANTIATE_TEST_SUITE_P(gqa, tp_forward,
                         ::testing::Values(tp_case{"llama_kv2", spec("llama", 2, 21), 2},
                                           tp_case{"llama_kv2", spec("llama", 2, 21), 4},
                                           tp_case{"llama_kv4", spec("llama", 4, 22), 2},
                                           tp_case{"llama_kv4", spec("llama", 4, 22), 4},
                                           tp_case{"qwen2_kv2_bias", spec("qwen2", 2, 23), 4}),
                         [](const ::testing::TestParamInfo<tp_case>& info) {
                           return info.param.name + "_tp" + std::to_string(info.param.tp);
                         });

TEST(tp_forward_batch, a_batched_step_over_the_paged_cache_matches_the_whole_model) {
  const tp_case tc{"llama_kv2", spec("llama", 2, 21), 4};
  auto m = load(tc);
  ASSERT_TRUE(m);
  // Two sequences' prefills in one step: 6 and 4 tokens, blocks of 4 positions.
  const ids tokens{3, 14, 15, 92, 65, 35, 89, 79, 32, 38};
  const ids pos{0, 1, 2, 3, 4, 5, 0, 1, 2, 3};
  const ids token_seq{0, 0, 0, 0, 0, 0, 1, 1, 1, 1};
  const ids table0{2, 0}, table1{5};
  const std::vector<std::span<const int32_t>> tables{table0, table1};
  const ids logit_rows{5, 9};
  const llama_forward::batch b{tokens, pos, token_seq, tables, logit_rows};
  auto step = [&](llama_forward& f) -> expected<std::vector<float>> {
    auto kv = f.new_paged_kv(8, 4);
    if (!kv) return kv.err();
    std::vector<float> logits(logit_rows.size() * size_t(f.config().vocab_size));
    if (auto r = f.forward_batch(b, **kv, logits); !r) return r.err();
    return logits;
  };
  auto be = make_cpu_backend(1);
  auto whole = llama_forward::create(m, *be, 16);
  ASSERT_TRUE(whole) << whole.message();
  auto want = step(**whole);
  ASSERT_TRUE(want) << want.message();
  auto reports = parallel::test::run_thread_ranks(tc.tp, 20s, [&](parallel::communicator& comm) {
    auto rank_be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *rank_be, 16, comm);
    if (!f) return "create: " + f.message();
    auto got = step(**f);
    if (!got) return "forward_batch: " + got.message();
    const double e = rel_error(*got, *want);
    return e <= 1e-4 ? std::string() : "logits differ by " + std::to_string(e) + " relative";
  });
  for (size_t r = 0; r < reports.size(); ++r) EXPECT_EQ(reports[r], "") << "rank " << r;
}

TEST(tp_forward_single, a_group_of_one_is_the_whole_model_bit_for_bit) {
  const tp_case tc{"llama_kv2", spec("llama", 2, 21), 1};
  auto m = load(tc);
  ASSERT_TRUE(m);
  auto want = whole_model_run(m);
  ASSERT_TRUE(want) << want.message();
  auto comm = parallel::make_single_communicator();
  auto be = make_cpu_backend(1);
  auto f = create_tp_forward(m, *be, chunk, *comm);
  ASSERT_TRUE(f) << f.message();
  auto got = run_greedy(**f);
  ASSERT_TRUE(got) << got.message();
  EXPECT_EQ(got->tokens, want->tokens);
  EXPECT_EQ(got->logits, want->logits);
}

// A rank of a group of `size` whose collectives are never reached: the plan is checked first.
class unconnected_rank final : public parallel::communicator {
 public:
  unconnected_rank(int rank, int size) : rank_(rank), size_(size) {}
  [[nodiscard]] int rank() const override { return rank_; }
  [[nodiscard]] int size() const override { return size_; }
  [[nodiscard]] expected<void> all_reduce_sum(std::span<float>) override { return fail("not connected"); }
  [[nodiscard]] expected<void> broadcast(std::span<std::byte>, int) override { return fail("not connected"); }
  [[nodiscard]] expected<void> barrier() override { return fail("not connected"); }
  [[nodiscard]] expected<void> synchronize() override { return fail("not connected"); }

 private:
  int rank_, size_;
};

TEST(tp_forward_errors, a_shape_tp_does_not_divide_is_the_named_error) {
  // No Gloo group here: ranks that fail and leave right after connecting can break a peer that is
  // still connecting, and the check under test needs no peer.
  const tp_case tc{"llama_kv2", spec("llama", 2, 21), 3};
  auto m = load(tc);
  ASSERT_TRUE(m);
  for (int rank = 0; rank < 3; ++rank) {
    unconnected_rank comm(rank, 3);
    auto be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *be, chunk, comm);
    ASSERT_FALSE(f);
    EXPECT_NE(f.message().find("tensor parallelism with tp = 3: num_attention_heads = 8 is not divisible by tp"),
              std::string::npos)
        << f.message();
  }
  // A failing collective is the forward's error.
  unconnected_rank comm(0, 2);
  auto be = make_cpu_backend(1);
  auto f = create_tp_forward(m, *be, chunk, comm);
  ASSERT_TRUE(f) << f.message();
  auto kv = (*f)->new_kv(16);
  ASSERT_TRUE(kv) << kv.message();
  std::vector<float> logits(size_t(m->config.vocab_size));
  auto r = (*f)->forward(ids{1, 2, 3}, 0, **kv, logits);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "not connected");
}

TEST(tp_forward_errors, a_peer_that_never_runs_the_step_fails_the_forward_within_the_timeout) {
  const tp_case tc{"llama_kv2", spec("llama", 2, 21), 2};
  auto m = load(tc);
  ASSERT_TRUE(m);
  std::promise<void> rank0_done;
  auto done = rank0_done.get_future().share();
  double took = 0;
  auto reports = parallel::test::run_thread_ranks(2, 2s, [&](parallel::communicator& comm) {
    if (comm.rank() == 1) {  // joined the group, then hangs: never runs the step
      done.wait_for(15s);  // bounded, in case rank 0 never gets to signal
      return std::string();
    }
    auto be = make_cpu_backend(1);
    auto f = create_tp_forward(m, *be, chunk, comm);
    std::string report;
    if (!f) {
      report = "create: " + f.message();
    } else {
      auto kv = (*f)->new_kv(32);
      std::vector<float> logits(size_t(m->config.vocab_size));
      const auto start = std::chrono::steady_clock::now();
      auto r = (*f)->forward(prompt(m->config.vocab_size), 0, **kv, logits);
      took = parallel::test::seconds_since(start);
      report = r ? "forward succeeded without its peer" : r.message();
      auto again = (*f)->forward(ids{1}, 0, **kv, logits);  // the group stays broken
      if (again) report += " | a later forward succeeded";
    }
    rank0_done.set_value();
    return report;
  });
  EXPECT_GE(took, 1.5);
  EXPECT_LT(took, 6.0);
  EXPECT_NE(reports[0].find("gloo all_reduce_sum (rank 0 of 2"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("the group is broken"), std::string::npos) << reports[0];
  EXPECT_EQ(reports[0].find("later forward"), std::string::npos) << reports[0];
  EXPECT_EQ(reports[1], "");
}

}  // namespace
}  // namespace troupe::engine
