// The CUDA backend against the CPU backend on the same bf16 model: logits within 1e-2 relative and
// the same greedy tokens, for one sequence and for a batched step over the paged cache; a device
// allocation that cannot succeed is an error value. Skips with a message when no device is present.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/cpu_backend.hpp"
#include "engine/kernels/cuda/cuda_backend.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/llama_forward.hpp"
#include "engine/llm_engine.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

using test::rel_error;

#define SKIP_WITHOUT_DEVICE() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: the CUDA backend is compiled, not run"

std::shared_ptr<const model> bf16_model(const std::string& arch) {
  tiny_model_spec s;
  s.arch = arch;
  s.layers = 4;
  s.dim = 256;
  s.heads = 8;
  s.kv_heads = 2;
  s.ffn = 512;
  s.vocab = 1024;
  s.max_position = 512;
  s.type = dtype::bf16;
  s.seed = 90;
  auto m = load_model(test::tiny_model("cuda_" + arch, s));
  EXPECT_TRUE(m) << m.message();
  return m ? *m : nullptr;
}

struct greedy_run {
  std::vector<int32_t> tokens;
  std::vector<std::vector<float>> logits;
};

// 32 greedy steps after a 20-token prompt.
expected<greedy_run> run(backend& be, const std::shared_ptr<const model>& m) {
  auto f = llama_forward::create(m, be, 64);
  if (!f) return f.err();
  auto kv = (*f)->new_kv(m->config.max_position);
  if (!kv) return kv.err();
  std::vector<int32_t> input(20);
  for (size_t i = 0; i < input.size(); ++i) input[i] = int32_t((i * 37 + 11) % size_t(m->config.vocab_size));
  std::vector<float> logits(size_t(m->config.vocab_size));
  greedy_run out;
  int64_t pos = 0;
  for (int s = 0; s < 32; ++s) {
    if (auto r = (*f)->forward(input, pos, **kv, logits); !r) return r.err();
    pos += int64_t(input.size());
    const int32_t next = int32_t(std::max_element(logits.begin(), logits.end()) - logits.begin());
    out.tokens.push_back(next);
    out.logits.push_back(logits);
    input = {next};
  }
  return out;
}

class cuda_backend_vs_cpu : public ::testing::TestWithParam<std::string> {};

TEST_P(cuda_backend_vs_cpu, one_sequence_gives_the_cpu_logits_and_greedy_tokens) {
  SKIP_WITHOUT_DEVICE();
  auto m = bf16_model(GetParam());
  ASSERT_TRUE(m);
  auto cpu_be = make_cpu_backend(0);
  auto want = run(*cpu_be, m);
  ASSERT_TRUE(want) << want.message();
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  auto got = run(**gpu_be, m);
  ASSERT_TRUE(got) << got.message();
  EXPECT_EQ(got->tokens, want->tokens);
  for (size_t s = 0; s < want->logits.size(); ++s)
    EXPECT_LT(rel_error(got->logits[s], want->logits[s]), 1e-2) << "step " << s;
}

INSTANTIATE_TEST_SUITE_P(archs, cuda_backend_vs_cpu, ::testing::Values("llama", "qwen2"));

TEST(cuda_backend, a_batched_step_over_the_paged_cache_matches_the_cpu) {
  SKIP_WITHOUT_DEVICE();
  auto m = bf16_model("llama");
  ASSERT_TRUE(m);
  // Two sequences' prefills and a third's decode token in one step; blocks of 4 positions.
  const std::vector<int32_t> tokens{3, 14, 15, 92, 65, 35, 89, 79, 32, 38, 46};
  const std::vector<int32_t> pos{0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 0};
  const std::vector<int32_t> token_seq{0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2};
  const std::vector<int32_t> table0{2, 0}, table1{5}, table2{7};
  const std::vector<std::span<const int32_t>> tables{table0, table1, table2};
  const std::vector<int32_t> logit_rows{5, 9, 10};
  const llama_forward::batch b{tokens, pos, token_seq, tables, logit_rows};
  auto step = [&](backend& be) -> expected<std::vector<float>> {
    auto f = llama_forward::create(m, be, 16);
    if (!f) return f.err();
    auto kv = (*f)->new_paged_kv(8, 4);
    if (!kv) return kv.err();
    std::vector<float> logits(logit_rows.size() * size_t(m->config.vocab_size));
    if (auto r = (*f)->forward_batch(b, **kv, logits); !r) return r.err();
    return logits;
  };
  auto cpu_be = make_cpu_backend(0);
  auto want = step(*cpu_be);
  ASSERT_TRUE(want) << want.message();
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  auto got = step(**gpu_be);
  ASSERT_TRUE(got) << got.message();
  EXPECT_LT(rel_error(*got, *want), 1e-2);
}

// Greedy tokens of 8 requests through the engine (5 at once, 3 more after 10 steps, so the decode
// batch changes bucket), with decode graphs at most `graph_max_batch` wide (0: eager).
std::map<int64_t, std::vector<int32_t>> engine_tokens(backend& be, const std::shared_ptr<const model>& m,
                                                      int64_t graph_max_batch, backend::graph_counts* counts) {
  std::map<int64_t, std::vector<int32_t>> out;
  auto f = llama_forward::create(m, be, 64);
  EXPECT_TRUE(f) << f.message();
  if (!f) return out;
  (*f)->set_graph_max_batch(graph_max_batch);
  engine_config cfg;
  cfg.max_batched_tokens = 64;
  cfg.kv_memory_bytes = int64_t(64) << 20;
  auto e = llm_engine::create(**f, cfg, {});
  EXPECT_TRUE(e) << e.message();
  if (!e) return out;
  auto add = [&](int i) {
    request r;
    for (int t = 0; t < 3 + 7 * i; ++t) r.prompt.push_back(int32_t((t * 29 + i * 5) % m->config.vocab_size));
    r.max_tokens = 30;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    EXPECT_TRUE((*e)->add_request(std::move(r)));
  };
  for (int i = 0; i < 5; ++i) add(i);
  for (int step = 0; (*e)->has_unfinished(); ++step) {
    if (step == 10)
      for (int i = 5; i < 8; ++i) add(i);
    for (auto& o : (*e)->step()) {
      EXPECT_TRUE(o.error.empty()) << o.error;
      out[o.request].insert(out[o.request].end(), o.tokens.begin(), o.tokens.end());
    }
  }
  if (counts) *counts = (*f)->graphs();
  return out;
}

TEST(cuda_backend, decode_steps_as_cuda_graphs_give_the_eager_tokens) {
  SKIP_WITHOUT_DEVICE();
  auto m = bf16_model("llama");
  ASSERT_TRUE(m);
  auto eager_be = make_cuda_backend(0);
  ASSERT_TRUE(eager_be) << eager_be.message();
  backend::graph_counts none, used;
  const auto eager = engine_tokens(**eager_be, m, 0, &none);
  EXPECT_EQ(none.launched, 0);
  auto graph_be = make_cuda_backend(0);
  ASSERT_TRUE(graph_be) << graph_be.message();
  const auto graphs = engine_tokens(**graph_be, m, 256, &used);
  EXPECT_EQ(graphs, eager);
  EXPECT_GE(used.captured, 2) << "two batch sizes at least (5 and 8 sequences)";
  EXPECT_GE(used.launched, 20) << "most decode steps ran as graphs";
  EXPECT_LT(used.captured, used.launched);
  // And both are the CPU's tokens.
  auto cpu_be = make_cpu_backend(0);
  EXPECT_EQ(engine_tokens(*cpu_be, m, 0, nullptr), eager);
}

TEST(cuda_backend, an_impossible_allocation_is_an_error_naming_cuda_malloc) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  auto kv = (*be)->alloc_paged_kv(100, 1 << 20, 1024, 1024);  // ~880 PB
  ASSERT_FALSE(kv);
  EXPECT_NE(kv.message().find("cudaMalloc"), std::string::npos) << kv.message();
  // The backend still works afterwards.
  auto small = (*be)->alloc_paged_kv(2, 4, 16, 64);
  EXPECT_TRUE(small) << small.message();
}

TEST(cuda_backend, a_missing_device_is_an_error_naming_it) {
  auto be = make_cuda_backend(cuda::device_count() + 3);
  ASSERT_FALSE(be);
  EXPECT_NE(be.message().find("device"), std::string::npos) << be.message();
}

}  // namespace
}  // namespace troupe::engine
