// Causal attention over a paged KV cache for a batch of tokens from many sequences: dispatch to the
// per-path work item (paged_attention_impl.hpp) and the threading. Work items are
// (token, kv head), claimed dynamically from an atomic counter because their context lengths differ
// (a batch mixes short and long sequences, and a prefill chunk's tokens grow in length).
// Measured (one thread, shared 2-core AVX-512 machine, so +-10%; decode of 8 sequences x 1024
// positions, 32 heads / 8 kv heads, head_dim 128, block 16, shuffled tables, 64 MiB of K/V; best of
// 20): scalar path 11.2 ms, AVX2 7.9 ms, AVX-512 8.0 ms, against 5.7-6.0 ms for cpu::attention's
// sgemm route on the same data laid out contiguously. Software prefetch of the next tile's rows
// took AVX-512 from 15.2 to 8.0 ms; two accumulators per dot product, prefetching a fixed 8-64 rows
// ahead, or deferring the dot-product lane sums to one pass per tile did not help. Cache-resident
// (4 x 64 positions) it is 0.18 ms against 0.11 ms: the per-(row, head) horizontal sum of the dot
// product is the remaining cost; an explicit-intrinsics kernel is the next step if it matters.
#include <algorithm>
#include <atomic>
#include <cassert>
#include <vector>

#include "engine/kernels/cpu/paged_attention_impl.hpp"

namespace troupe::engine::cpu {

namespace detail {

void paged_attention_item_scalar(const paged_attention_args& a, int64_t token, int64_t kv_begin,
                                 int64_t kv_end, float* scratch) {
  for (int64_t g = kv_begin; g < kv_end; ++g) pa_item(a, token, g, scratch);
}

void paged_attention_on(simd_level level, thread_pool& pool, const paged_attention_args& a) {
  if (a.n_tokens <= 0) return;
  assert(a.n_kv_heads > 0 && a.n_heads % a.n_kv_heads == 0 && a.block_size > 0);
  assert(int64_t(a.pos.size()) >= a.n_tokens && int64_t(a.token_seq.size()) >= a.n_tokens);
  paged_attention_item_fn item = paged_attention_item_scalar;
  if (level == simd_level::avx512) item = paged_attention_item_avx512;
  if (level == simd_level::avx2) item = paged_attention_item_avx2;

  // A token's kv heads together when there are tokens enough to share out (its K/V rows are then
  // read whole); one kv head per item otherwise, so that a single decode token still spreads.
  const int64_t heads_per_item = a.n_tokens >= 4 * int64_t(pool.size()) ? a.n_kv_heads : 1;
  const int64_t per_token = a.n_kv_heads / heads_per_item;
  const size_t scratch_floats = size_t(paged_attention_scratch(a.n_heads / a.n_kv_heads * heads_per_item, a.head_dim));
  const int64_t items = a.n_tokens * per_token;
  std::atomic<int64_t> next{0};
  pool.parallel_for(std::min<int64_t>(pool.size(), items), 1, [&](int, int64_t, int64_t) {
    thread_local std::vector<float> scratch;
    if (scratch.size() < scratch_floats) scratch.resize(scratch_floats);
    for (int64_t i; (i = next.fetch_add(1, std::memory_order_relaxed)) < items;) {
      const int64_t g0 = i % per_token * heads_per_item;
      item(a, i / per_token, g0, g0 + heads_per_item, scratch.data());
    }
  });
}

}  // namespace detail

void paged_attention(thread_pool& pool, const paged_attention_args& a) {
  detail::paged_attention_on(detail::best_level(), pool, a);
}

}  // namespace troupe::engine::cpu
