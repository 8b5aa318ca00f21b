// Paged attention on the device against the CPU backend's: decode over long contexts (split along
// the KV length and merged) and short ones (one block per query), in one batch and alone.
// Skips with a message when no device is present.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <numeric>
#include <random>

#include "engine/cpu_backend.hpp"
#include "engine/kernels/cuda/cuda_backend.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

constexpr int64_t heads = 32, kv_heads = 4, head_dim = 64, kv_dim = kv_heads * head_dim, block = 16;

// Fills `be`'s cache with the same K/V (every sequence's positions 0..len-1, blocks assigned in
// order) and returns the attention of one query per sequence at its last position.
std::vector<float> decode_attention(backend& be, const std::vector<int32_t>& lens, uint32_t seed, bool device) {
  std::vector<std::vector<int32_t>> tables;
  int32_t next_block = 0;
  std::vector<int32_t> pos, token_seq;
  for (size_t s = 0; s < lens.size(); ++s) {
    std::vector<int32_t> t;
    for (int32_t p = 0; p < lens[s]; p += int32_t(block)) t.push_back(next_block++);
    tables.push_back(t);
    for (int32_t p = 0; p < lens[s]; ++p) {
      pos.push_back(p);
      token_seq.push_back(int32_t(s));
    }
  }
  const std::vector<std::span<const int32_t>> spans(tables.begin(), tables.end());
  auto kv = be.alloc_paged_kv(1, next_block, block, kv_dim);
  EXPECT_TRUE(kv) << kv.message();
  const int64_t n = int64_t(pos.size()), queries = int64_t(lens.size());
  std::mt19937 rng(seed);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> k(size_t(n * kv_dim)), v(k.size()), q(size_t(queries * heads * head_dim));
  for (auto* a : {&k, &v, &q})
    for (auto& x : *a) x = d(rng);
  auto kb = be.alloc(n, kv_dim), vb = be.alloc(n, kv_dim), qb = be.alloc(queries, heads * head_dim),
       ob = be.alloc(queries, heads * head_dim);
  auto put = [device](act a, const std::vector<float>& host) {
    if (device)
      EXPECT_EQ(cudaMemcpy(a.data, host.data(), host.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
    else
      std::copy(host.begin(), host.end(), a.data);
  };
  put(kb->view(), k);
  put(vb->view(), v);
  put(qb->view(), q);
  be.write_paged_kv(**kv, 0, paged_batch{pos, token_seq, spans}, kb->view(), vb->view());
  std::vector<int32_t> qpos;
  std::vector<int32_t> qseq(static_cast<size_t>(queries));
  for (int32_t len : lens) qpos.push_back(len - 1);
  std::iota(qseq.begin(), qseq.end(), 0);
  be.paged_attention(qb->view(), **kv, 0, paged_batch{qpos, qseq, spans}, heads, kv_heads, head_dim, ob->view());
  std::vector<float> out(q.size());
  be.to_host(ob->view(), out);
  auto ok = be.check();
  EXPECT_TRUE(ok) << ok.message();
  return out;
}

class cuda_decode_attention : public ::testing::TestWithParam<std::vector<int32_t>> {};

TEST_P(cuda_decode_attention, matches_the_cpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: the attention kernels are compiled, not run";
  auto cpu_be = make_cpu_backend(0);
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  const auto want = decode_attention(*cpu_be, GetParam(), 5, false);
  const auto got = decode_attention(**gpu_be, GetParam(), 5, true);
  EXPECT_LT(test::rel_error(got, want), 1e-4);
}

INSTANTIATE_TEST_SUITE_P(contexts, cuda_decode_attention,
                         ::testing::Values(std::vector<int32_t>{3000},              // batch 1: split
                                           std::vector<int32_t>{1, 130, 700, 2100},  // mixed, split
                                           std::vector<int32_t>{5, 17, 64},          // short: one block each
                                           std::vector<int32_t>{8191}));             // the longest here

}  // namespace
}  // namespace troupe::engine
