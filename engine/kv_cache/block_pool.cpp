// The block pool: free queue as an intrusive list over block ids, and the prefix-cache map.
#include "engine/kv_cache/block_pool.hpp"

#include <algorithm>
#include <cassert>

namespace troupe::engine {

block_pool::block_pool(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size), blocks_(size_t(std::max(num_blocks, 0))) {
  assert(num_blocks >= 1 && block_size >= 1);
  for (int32_t i = 0; i < num_blocks; ++i) push_tail(i);
}

void block_pool::push_tail(int32_t id) {
  block& b = blocks_[size_t(id)];
  assert(!b.in_free_queue);
  b.prev = tail_;
  b.next = -1;
  if (tail_ >= 0) blocks_[size_t(tail_)].next = id;
  else head_ = id;
  tail_ = id;
  b.in_free_queue = true;
  ++num_free_;
}

void block_pool::remove(int32_t id) {
  block& b = blocks_[size_t(id)];
  assert(b.in_free_queue);
  if (b.prev >= 0) blocks_[size_t(b.prev)].next = b.next;
  else head_ = b.next;
  if (b.next >= 0) blocks_[size_t(b.next)].prev = b.prev;
  else tail_ = b.prev;
  b.prev = b.next = -1;
  b.in_free_queue = false;
  --num_free_;
}

void block_pool::evict(int32_t id) {
  block& b = blocks_[size_t(id)];
  if (b.serial == 0) return;
  auto it = cache_.find(b.hash);
  assert(it != cache_.end() && it->second == id);
  cache_.erase(it);
  b.serial = 0;
  b.hash = b.parent_hash = b.parent_serial = 0;
  b.tokens.clear();
  ++evictions_;
}

std::optional<std::vector<int32_t>> block_pool::allocate(int32_t n) {
  if (n < 0 || n > num_free_) return std::nullopt;
  std::vector<int32_t> out;
  out.reserve(size_t(n));
  for (int32_t i = 0; i < n; ++i) {
    const int32_t id = head_;
    remove(id);
    evict(id);
    blocks_[size_t(id)].refs = 1;
    out.push_back(id);
  }
  return out;
}

void block_pool::ref(int32_t id) {
  block& b = blocks_[size_t(id)];
  if (b.refs == 0) remove(id);
  ++b.refs;
}

void block_pool::unref(int32_t id) {
  block& b = blocks_[size_t(id)];
  assert(b.refs > 0);
  if (--b.refs == 0) push_tail(id);
}

std::optional<block_key> block_pool::lookup(uint64_t hash, uint64_t parent_hash, uint64_t parent_serial,
                                            std::span<const int32_t> tokens, int32_t* block_id) const {
  auto it = cache_.find(hash);
  if (it == cache_.end()) return std::nullopt;
  const block& b = blocks_[size_t(it->second)];
  if (b.parent_serial != parent_serial) return std::nullopt;
  if (parent_serial == 0 && b.parent_hash != parent_hash) return std::nullopt;
  if (!std::equal(b.tokens.begin(), b.tokens.end(), tokens.begin(), tokens.end())) return std::nullopt;
  if (block_id) *block_id = it->second;
  return block_key{b.hash, b.serial};
}

std::optional<block_key> block_pool::cache(int32_t id, uint64_t hash, uint64_t parent_hash,
                                           uint64_t parent_serial, std::span<const int32_t> tokens,
                                           std::optional<block_key>* existing) {
  assert(int32_t(tokens.size()) == block_size_);
  block& b = blocks_[size_t(id)];
  assert(b.refs > 0);
  if (existing) *existing = lookup(hash, parent_hash, parent_serial, tokens, nullptr);
  if (b.serial != 0 || cache_.count(hash)) return std::nullopt;
  b.serial = next_serial_++;
  b.hash = hash;
  b.parent_hash = parent_hash;
  b.parent_serial = parent_serial;
  b.tokens.assign(tokens.begin(), tokens.end());
  cache_.emplace(hash, id);
  return block_key{hash, b.serial};
}

std::vector<int32_t> block_pool::free_queue() const {
  std::vector<int32_t> out;
  out.reserve(size_t(num_free_));
  for (int32_t id = head_; id >= 0; id = blocks_[size_t(id)].next) out.push_back(id);
  return out;
}

}  // namespace troupe::engine
