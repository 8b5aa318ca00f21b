// Sampling on the device: greedy is the lowest-id argmax; top-k, top-p and min-p keep only what
// they should; penalties edit the logits as the host sampler does; draws follow the softmax; the
// same (seed, counter) draws the same token; and the engine with device sampling (penalties
// included) gives the CPU engine's greedy tokens. Skips with a message without a device.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "engine/cpu_backend.hpp"
#include "engine/kernels/cuda/cuda_backend.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/llm_engine.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

#define SKIP_WITHOUT_DEVICE() \
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: device sampling is compiled, not run"

device_sampling params(float temperature, int32_t top_k, float top_p, uint64_t seed, uint64_t counter) {
  device_sampling d;
  d.temperature = temperature;
  d.top_k = top_k;
  d.top_p = top_p;
  d.seed = seed;
  d.counter = counter;
  return d;
}

// Samples `rows` (one params per row, each over `logits`) on device 0.
std::vector<int32_t> sample_rows(backend& be, const std::vector<float>& logits, const std::vector<device_sampling>& rows,
                                 const std::vector<penalty_entry>& penalties = {}) {
  const int64_t vocab = int64_t(logits.size());
  auto buf = be.alloc(int64_t(rows.size()), vocab);
  const act a = buf->view();
  for (size_t r = 0; r < rows.size(); ++r)
    EXPECT_EQ(cudaMemcpy(a.data + int64_t(r) * vocab, logits.data(), logits.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  std::vector<int32_t> ids(rows.size(), -1);
  be.sample(a, rows, penalties, ids);
  auto ok = be.check();
  EXPECT_TRUE(ok) << ok.message();
  return ids;
}

TEST(cuda_sampling, greedy_takes_the_lowest_id_of_the_maxima) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  std::vector<float> logits(5000, -1.0f);
  logits[4000] = 3.0f;
  logits[1234] = 3.0f;
  const auto ids = sample_rows(**be, logits, {device_sampling{}});
  EXPECT_EQ(ids[0], 1234);
}

TEST(cuda_sampling, draws_follow_the_softmax_and_the_cuts) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  const std::vector<float> logits{2.0f, 1.0f, 0.5f, 0.0f, -1.0f, -3.0f};
  constexpr int draws = 20000;
  auto frequencies = [&](device_sampling p) {
    std::vector<device_sampling> rows(draws, p);
    for (int i = 0; i < draws; ++i) rows[size_t(i)].counter = uint64_t(i);
    std::map<int32_t, double> f;
    for (int32_t id : sample_rows(**be, logits, rows)) f[id] += 1.0 / draws;
    return f;
  };
  // Plain temperature 1: the softmax, within 1.5 percentage points.
  double z = 0;
  for (float l : logits) z += std::exp(double(l));
  const auto plain = frequencies(params(1.0f, 0, 1.0f, 42, 0));
  for (size_t i = 0; i < logits.size(); ++i)
    EXPECT_NEAR(plain.count(int32_t(i)) ? plain.at(int32_t(i)) : 0.0, std::exp(double(logits[i])) / z, 0.015) << i;
  // top-k 2: only the two best, in their renormalized ratio.
  const auto top2 = frequencies(params(1.0f, 2, 1.0f, 42, 0));
  EXPECT_EQ(top2.size(), 2u);
  EXPECT_NEAR(top2.at(0), std::exp(2.0) / (std::exp(2.0) + std::exp(1.0)), 0.015);
  // top-p 0.5: the best token alone holds more than half of the mass.
  const auto nucleus = frequencies(params(1.0f, 0, 0.5f, 42, 0));
  EXPECT_EQ(nucleus.size(), 1u);
  EXPECT_EQ(nucleus.begin()->first, 0);
}

TEST(cuda_sampling, the_same_seed_and_counter_draw_the_same_token) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  std::vector<float> logits(32000);
  for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(std::sin(double(i))) * 4.0f;
  std::vector<device_sampling> rows;
  for (uint64_t c = 0; c < 64; ++c) rows.push_back(params(0.9f, 50, 0.95f, 7, c));
  const auto a = sample_rows(**be, logits, rows);
  const auto b = sample_rows(**be, logits, rows);
  EXPECT_EQ(a, b);
  std::map<int32_t, int> distinct;
  for (int32_t id : a) ++distinct[id];
  EXPECT_GT(distinct.size(), 1u) << "different counters should not all draw one token";
}

TEST(cuda_sampling, min_p_keeps_only_tokens_near_the_best) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  // Weights relative to the best: 1, e^-0.5 = 0.61, e^-1 = 0.37, e^-3 = 0.05.
  const std::vector<float> logits{1.0f, 0.5f, 0.0f, -2.0f};
  std::vector<device_sampling> rows;
  for (uint64_t c = 0; c < 4000; ++c) {
    auto p = params(1.0f, 0, 1.0f, 3, c);
    p.min_p = 0.5f;  // keeps tokens 0 and 1
    rows.push_back(p);
  }
  std::map<int32_t, int> seen;
  for (int32_t id : sample_rows(**be, logits, rows)) ++seen[id];
  EXPECT_EQ(seen.size(), 2u);
  EXPECT_GT(seen[0], seen[1]);
  EXPECT_GT(seen[1], 0);
}

TEST(cuda_sampling, penalties_edit_the_logits_as_the_host_sampler_does) {
  SKIP_WITHOUT_DEVICE();
  auto be = make_cuda_backend(0);
  ASSERT_TRUE(be) << be.message();
  // Greedy after the penalties, row by row:
  const std::vector<float> logits{2.0f, 1.0f, 0.9f, -1.0f};
  std::vector<device_sampling> rows(3, device_sampling{});
  std::vector<penalty_entry> penalties;
  rows[0].repetition_penalty = 4.0f;  // 2.0 -> 0.5: token 1 wins
  rows[0].penalty_begin = 0;
  rows[0].penalty_count = 1;
  penalties.push_back({0, 0});
  rows[1].repetition_penalty = 4.0f;  // tokens 0 and 1 penalized: 0.5, 0.25: token 2 wins
  rows[1].presence_penalty = 0.0f;
  rows[1].penalty_begin = 1;
  rows[1].penalty_count = 2;
  penalties.push_back({0, 0});
  penalties.push_back({1, 1});
  rows[2].frequency_penalty = 0.6f;  // token 0 generated 3 times: 2.0 - 1.8 = 0.2: token 1 wins
  rows[2].penalty_begin = 3;
  rows[2].penalty_count = 1;
  penalties.push_back({0, 3});
  const auto ids = sample_rows(**be, logits, rows, penalties);
  // The host rule gives the same answers.
  for (size_t r = 0; r < rows.size(); ++r) {
    std::vector<float> host = logits;
    for (int32_t i = 0; i < rows[r].penalty_count; ++i) {
      const penalty_entry e = penalties[size_t(rows[r].penalty_begin + i)];
      host[size_t(e.token)] = penalized_logit(host[size_t(e.token)], rows[r].repetition_penalty,
                                              rows[r].presence_penalty, rows[r].frequency_penalty, e.generated);
    }
    EXPECT_EQ(ids[r], int32_t(std::max_element(host.begin(), host.end()) - host.begin())) << "row " << r;
  }
  EXPECT_EQ(ids, (std::vector<int32_t>{1, 2, 1}));
}

TEST(cuda_sampling, the_engine_with_device_sampling_gives_the_cpu_engines_greedy_tokens) {
  SKIP_WITHOUT_DEVICE();
  tiny_model_spec s = test::small_spec();
  s.type = dtype::bf16;
  auto m = load_model(test::tiny_model("cuda_engine_bf16", s));
  ASSERT_TRUE(m) << m.message();
  auto run = [&](backend& be) -> std::map<int64_t, std::vector<int32_t>> {
    auto fwd = llama_forward::create(*m, be, 64);
    EXPECT_TRUE(fwd) << fwd.message();
    engine_config cfg;
    cfg.max_batched_tokens = 64;
    auto e = llm_engine::create(**fwd, cfg, {});
    EXPECT_TRUE(e) << e.message();
    for (int i = 0; i < 8; ++i) {
      request r;
      for (int t = 0; t < 5 + 3 * i; ++t) r.prompt.push_back(int32_t((t * 31 + i * 7) % (*m)->config.vocab_size));
      r.max_tokens = 24;
      r.sampling.temperature = 0;
      // Penalties on some requests: applied on the device as the host sampler applies them.
      if (i % 2 == 1) r.sampling.repetition_penalty = 1.3f;
      if (i % 3 == 0) r.sampling.frequency_penalty = 0.4f;
      if (i % 4 == 2) r.sampling.presence_penalty = 0.5f;
      r.stop.ignore_eos = true;
      EXPECT_TRUE((*e)->add_request(std::move(r)));
    }
    std::map<int64_t, std::vector<int32_t>> out;
    while ((*e)->has_unfinished())
      for (auto& o : (*e)->step()) {
        EXPECT_TRUE(o.error.empty()) << o.error;
        out[o.request].insert(out[o.request].end(), o.tokens.begin(), o.tokens.end());
      }
    return out;
  };
  auto cpu_be = make_cpu_backend(0);
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  ASSERT_TRUE((*gpu_be)->samples_on_device());
  EXPECT_EQ(run(**gpu_be), run(*cpu_be));
}

}  // namespace
}  // namespace troupe::engine
