// The KV cache manager: per-sequence block tables over a block_pool, automatic prefix caching
// (find_cached_prefix / commit_full_blocks), copy-on-write forks for parallel sampling, and stats.
// Backend-independent: it hands out block ids; the backend owns the K/V memory of
// pool.num_blocks() blocks of pool.block_size() tokens and performs the block copies it is told of.
//
// A sequence's "slots" are the token positions it has blocks for (allocate_slots adds to them);
// its KV must be written in position order. Only full blocks are ever cached or shared through the
// cache, so no sequence writes into a block another sequence reads, except a partial last block
// shared by fork(), which allocate_slots copies first (copy-on-write).
//
// Threading: not thread-safe; the engine's step thread owns it and its pool. Errors that are
// caller bugs (unknown sequence, fork onto an existing id) are expected<> values; running out of
// blocks is an allocation result, never an error.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/expected.hpp"
#include "engine/kv_cache/block_hash.hpp"
#include "engine/kv_cache/block_pool.hpp"
#include "engine/kv_cache/kv_blocks.hpp"

namespace troupe::engine {

struct kv_cache_config {
  std::string model_revision;              // seeds every hash: two revisions never share a block
  bool enable_prefix_caching = true;
  block_hash_fn hash = &xxh3_block_hash;   // tests may force collisions with a tiny hash
};

class kv_cache_manager {
 public:
  // `pool` must outlive the manager. Two managers may share a pool (then they share its cache, kept
  // apart by their revisions).
  kv_cache_manager(block_pool& pool, kv_cache_config config);

  [[nodiscard]] int32_t block_size() const { return pool_.block_size(); }
  [[nodiscard]] const block_pool& pool() const { return pool_; }

  // The longest cached run of full blocks at the start of `tokens`, leaving at least the last token
  // uncached. Takes no references: pass it to allocate_slots before anything else allocates.
  [[nodiscard]] prefix_match find_cached_prefix(std::span<const int32_t> tokens) const;

  // Blocks allocate_slots would take from the free queue (for a new sequence with `cached`).
  [[nodiscard]] int32_t blocks_needed(seq_id seq, int64_t num_new_tokens, const prefix_match* cached = nullptr) const;

  // Adds `num_new_tokens` slots to `seq` (creating it when unknown; `cached`, a fresh match from
  // find_cached_prefix, is only for a new sequence and gives it those blocks and slots first).
  // On failure (not enough free blocks) nothing changes; the result says how many were missing.
  [[nodiscard]] allocation allocate_slots(seq_id seq, int64_t num_new_tokens, const prefix_match* cached = nullptr);

  // Hashes every block of `seq` that `tokens` (the sequence's tokens whose KV is computed, from
  // position 0; at most its slots) fills and that is not committed yet, into the prefix cache.
  [[nodiscard]] expected<void> commit_full_blocks(seq_id seq, std::span<const int32_t> tokens);

  // Drops the sequence: its blocks lose a reference, last block first (so a freed sequence's tail
  // is evicted before its prefix). Unknown ids are ignored (returns false).
  bool free(seq_id seq);

  // `child` shares all of `parent`'s blocks (each ref +1), slots and committed hashes.
  [[nodiscard]] expected<void> fork(seq_id parent, seq_id child);

  [[nodiscard]] bool contains(seq_id seq) const { return seqs_.count(seq) != 0; }
  // Empty for an unknown sequence.
  [[nodiscard]] std::span<const int32_t> block_table(seq_id seq) const;
  [[nodiscard]] int64_t num_slots(seq_id seq) const;
  [[nodiscard]] size_t num_seqs() const { return seqs_.size(); }
  // Every live sequence id (for invariant checks).
  [[nodiscard]] std::vector<seq_id> seq_ids() const;

  [[nodiscard]] kv_cache_stats stats() const;
  void reset_stats() { stats_ = {}; }

 private:
  struct seq_state {
    std::vector<int32_t> blocks;
    int64_t slots = 0;
    std::vector<block_key> keys;  // committed full blocks (serial 0: content not in the cache)
  };

  [[nodiscard]] int32_t blocks_for(int64_t tokens) const {
    return int32_t((tokens + block_size() - 1) / block_size());
  }

  block_pool& pool_;
  kv_cache_config config_;
  uint64_t root_hash_;
  std::unordered_map<seq_id, seq_state> seqs_;
  kv_cache_stats stats_;
};

}  // namespace troupe::engine
