// The boundary types between the KV cache manager and its users (the scheduler, and through the
// step plan the forward pass): block tables, prefix matches, allocation results and block copies.
// Plain values, no exceptions: running out of blocks is an ordinary result the scheduler handles
// by preemption.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::engine {

// Sequence ids are chosen by the caller (the scheduler); unique among live sequences.
using seq_id = int64_t;

// Physical block ids, in token order: token position p of a sequence lives in block ids[p / block_size]
// at offset p % block_size.
struct kv_blocks {
  std::vector<int32_t> ids;
};

// Copy-on-write: the backend must copy every layer's K and V of block `src` into block `dst` before
// the step's forward pass writes into `dst`.
struct block_copy {
  int32_t src = -1;
  int32_t dst = -1;
  friend bool operator==(const block_copy&, const block_copy&) = default;
};

// Identity of one cached block in a chain: its content hash and the pool's serial for the cached
// copy (the link the next block's lookup must see as its parent). Opaque to callers.
struct block_key {
  uint64_t hash = 0;
  uint64_t serial = 0;
};

// The longest cached prefix of some tokens: num_tokens = blocks.ids.size() * block_size (full blocks
// only, and never all the tokens: at least the last one is left to compute, for its logits).
struct prefix_match {
  int64_t num_tokens = 0;
  int64_t num_query_tokens = 0;  // how many tokens were looked up (for the hit rate)
  kv_blocks blocks;
  std::vector<block_key> keys;   // one per block
};

// Result of allocate_slots: ok, or how many blocks were missing (nothing was changed then).
struct [[nodiscard]] allocation {
  bool ok = false;
  kv_blocks new_blocks;              // blocks appended to the table (not counting prefix hits)
  std::vector<block_copy> copies;    // copy-on-write of a shared partial last block (0 or 1)
  int32_t blocks_needed = 0;         // on failure: blocks this request needed ...
  int32_t blocks_available = 0;      // ... and what the pool could give
  explicit operator bool() const { return ok; }
};

// Counters since construction (or reset_stats).
struct kv_cache_stats {
  int32_t blocks_total = 0;
  int32_t blocks_used = 0;          // ref count > 0
  int32_t blocks_cached = 0;        // holding a prefix-cache entry (used or free)
  int64_t prefix_queries = 0;       // prefix matches used by allocate_slots
  int64_t prefix_query_tokens = 0;  // tokens those queries looked up
  int64_t prefix_hit_tokens = 0;    // tokens they found cached
  int64_t evictions = 0;            // cached blocks reused for other content
  [[nodiscard]] double hit_rate() const {
    return prefix_query_tokens == 0 ? 0.0 : double(prefix_hit_tokens) / double(prefix_query_tokens);
  }
};

}  // namespace troupe::engine
