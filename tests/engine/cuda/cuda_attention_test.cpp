// Paged attention on the device against the CPU backend's: decode over long contexts (split along
// the KV length and merged) and short ones, in one batch and alone, through the grouped-query
// kernel (8 query heads per KV head) and the per-head one (as many KV heads as query heads).
// Skips with a message when no device is present.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <numeric>
#include <ostream>
#include <random>

#include "engine/cpu_backend.hpp"
#include "engine/kernels/cuda/cuda_backend.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::engine {
namespace {

constexpr int64_t heads = 32, head_dim = 64, block = 16;

struct attention_case {
  std::vector<int32_t> lens;  // context of each sequence; one query at its last position
  int64_t kv_heads = 4;
};
void PrintTo(const attention_case& c, std::ostream* os) {
  *os << c.lens.size() << " sequences, longest " << *std::max_element(c.lens.begin(), c.lens.end()) << ", "
      << c.kv_heads << " kv heads";
}

// Fills `be`'s cache with the same K/V (every sequence's positions 0..len-1, blocks assigned in
// order) and returns the attention of one query per sequence at its last position (decode) or of
// a query at every position (prefill: the tiled kernel).
std::vector<float> run_attention(backend& be, const std::vector<int32_t>& lens, int64_t kv_heads, uint32_t seed,
                                 bool device, bool prefill) {
  const int64_t kv_dim = kv_heads * head_dim;
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
  const int64_t n = int64_t(pos.size()), queries = prefill ? n : int64_t(lens.size());
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
  std::vector<int32_t> qpos = pos;
  std::vector<int32_t> qseq = token_seq;
  if (!prefill) {
    qpos.clear();
    for (int32_t len : lens) qpos.push_back(len - 1);
    qseq.resize(lens.size());
    std::iota(qseq.begin(), qseq.end(), 0);
  }
  be.paged_attention(qb->view(), **kv, 0, paged_batch{qpos, qseq, spans}, heads, kv_heads, head_dim, ob->view());
  std::vector<float> out(q.size());
  be.to_host(ob->view(), out);
  auto ok = be.check();
  EXPECT_TRUE(ok) << ok.message();
  return out;
}

class cuda_decode_attention : public ::testing::TestWithParam<attention_case> {};

TEST_P(cuda_decode_attention, matches_the_cpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: the attention kernels are compiled, not run";
  auto cpu_be = make_cpu_backend(0);
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  const auto& c = GetParam();
  const auto want = run_attention(*cpu_be, c.lens, c.kv_heads, 5, false, false);
  const auto got = run_attention(**gpu_be, c.lens, c.kv_heads, 5, true, false);
  EXPECT_LT(test::rel_error(got, want), 1e-4);
}

// Prefill: every position of two sequences (several 64-token tiles, a partial one, a one-token
// sequence) on tensor cores. Q, K, V and the weights are rounded to bf16 there, hence 2e-2.
TEST(cuda_prefill_attention, matches_the_cpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: the attention kernels are compiled, not run";
  auto cpu_be = make_cpu_backend(0);
  auto gpu_be = make_cuda_backend(0);
  ASSERT_TRUE(gpu_be) << gpu_be.message();
  for (const int64_t kv_heads : {4, 32}) {
    const std::vector<int32_t> lens{200, 1, 77};
    const auto want = run_attention(*cpu_be, lens, kv_heads, 9, false, true);
    const auto got = run_attention(**gpu_be, lens, kv_heads, 9, true, true);
    EXPECT_LT(test::rel_error(got, want), 2e-2) << "kv heads " << kv_heads;
  }
}

INSTANTIATE_TEST_SUITE_P(contexts, cuda_decode_attention,
                         ::testing::Values(attention_case{{3000}, 4},              // batch 1: split
                                           attention_case{{1, 130, 700, 2100}, 4},  // mixed, split
                                           attention_case{{5, 17, 64}, 4},          // short: unsplit
                                           attention_case{{8191}, 4},               // the longest here
                                           attention_case{{3000}, 32},              // per-head kernel, split
                                           attention_case{{5, 17, 64}, 32}));       // per-head, unsplit

}  // namespace
}  // namespace troupe::engine
