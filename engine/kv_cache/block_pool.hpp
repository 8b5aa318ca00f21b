// The pool of fixed-size KV blocks: ref counts, the free queue in eviction order and the
// prefix-cache map (hash -> block) over full blocks.
//
// Free queue: an intrusive doubly linked list over block ids, so that every operation is O(1). A
// block whose ref count drops to 0 joins the tail; allocation takes the head (least recently freed);
// a free block that is cached stays in the map until allocation reaches it (eviction), and a cache
// hit on it pulls it out of the queue wherever it is. At start the queue is 0, 1, ..., num_blocks-1.
//
// Cached blocks: a full block gets a cache entry (content hash, its token ids, the link to its
// parent entry, a serial unique over the pool's life). Lookup compares hash, parent link and token
// ids, so a hash collision is a miss, never wrong KV. One entry per hash: a second block with the
// same hash (a duplicate computed concurrently, or a collision) stays uncached.
//
// Threading: not thread-safe; owned by the engine's step thread, like the manager that uses it.
// Limits: num_blocks < 2^31; memory per block is its ids and links plus block_size ids when cached.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/kv_cache/kv_blocks.hpp"

namespace troupe::engine {

class block_pool {
 public:
  // num_blocks >= 1, block_size >= 1 (asserted).
  block_pool(int32_t num_blocks, int32_t block_size);

  [[nodiscard]] int32_t num_blocks() const { return int32_t(blocks_.size()); }
  [[nodiscard]] int32_t block_size() const { return block_size_; }
  [[nodiscard]] int32_t num_free() const { return num_free_; }  // in the free queue (cached or not)
  [[nodiscard]] int32_t num_cached() const { return int32_t(cache_.size()); }

  // Takes `n` blocks from the head of the free queue (evicting their cache entries), each with ref
  // count 1. Returns nothing, and changes nothing, when fewer than n are free.
  [[nodiscard]] std::optional<std::vector<int32_t>> allocate(int32_t n);

  // +1 reference; a free block (ref 0) leaves the free queue in O(1).
  void ref(int32_t id);
  // -1 reference; at 0 the block joins the free queue's tail, keeping its cache entry.
  void unref(int32_t id);

  // The cached block with this hash, parent link and tokens, if any.
  // parent_serial: the serial of the parent block's entry, or 0 for a first block (then
  // parent_hash, the revision root hash, is compared instead).
  [[nodiscard]] std::optional<block_key> lookup(uint64_t hash, uint64_t parent_hash, uint64_t parent_serial,
                                                std::span<const int32_t> tokens, int32_t* block) const;

  // Gives the (full, referenced) block `id` a cache entry. Returns its key, or nothing when the hash
  // is already held by another block (whose key is returned through `existing` if its content and
  // parent match, so the caller can chain on it) or the block is already cached.
  [[nodiscard]] std::optional<block_key> cache(int32_t id, uint64_t hash, uint64_t parent_hash,
                                               uint64_t parent_serial, std::span<const int32_t> tokens,
                                               std::optional<block_key>* existing);

  [[nodiscard]] int32_t ref_count(int32_t id) const { return blocks_[size_t(id)].refs; }
  [[nodiscard]] bool is_free(int32_t id) const { return blocks_[size_t(id)].in_free_queue; }
  [[nodiscard]] bool is_cached(int32_t id) const { return blocks_[size_t(id)].serial != 0; }
  // The serial of the block's cache entry; 0 when not cached.
  [[nodiscard]] uint64_t serial(int32_t id) const { return blocks_[size_t(id)].serial; }
  [[nodiscard]] int64_t evictions() const { return evictions_; }

  // The free queue from head (next to allocate) to tail. O(num_free); for tests and checks.
  [[nodiscard]] std::vector<int32_t> free_queue() const;

 private:
  struct block {
    int32_t refs = 0;
    int32_t prev = -1;  // free queue links (-1: none)
    int32_t next = -1;
    bool in_free_queue = false;
    uint64_t serial = 0;  // 0: not cached
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    uint64_t parent_serial = 0;
    std::vector<int32_t> tokens;  // when cached
  };

  void push_tail(int32_t id);
  void remove(int32_t id);
  void evict(int32_t id);

  int32_t block_size_;
  std::vector<block> blocks_;
  int32_t head_ = -1;
  int32_t tail_ = -1;
  int32_t num_free_ = 0;
  uint64_t next_serial_ = 1;
  int64_t evictions_ = 0;
  std::unordered_map<uint64_t, int32_t> cache_;  // hash -> block id
};

}  // namespace troupe::engine
