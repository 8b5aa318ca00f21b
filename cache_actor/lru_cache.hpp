// The response cache's in-memory tier: an LRU map from exact key bytes to stored completions,
// bounded in (estimated) bytes, with a time to live per entry.
//
// Threading: none. One owner (the cache actor) calls it; it takes no locks.
// Limits: sizes are estimates of the heap the entries hold (see entry_size), not malloc's truth.
// Expired entries are removed when looked up or when they reach the LRU end, so until then they
// still count against the bound. The table hashes with the key's own hash (XXH3-64, unseeded): keys
// crafted to collide make a bucket slow, never a wrong answer (equality compares the bytes).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/cluster_messages.hpp"

namespace troupe::cache {

using clock_fn = std::function<std::chrono::steady_clock::time_point()>;

// Bookkeeping counted per entry besides its key bytes and contents: the list node, the hash table
// node and bucket, the stored key's and entry's own headers.
inline constexpr int64_t entry_overhead_bytes = 160;

// The estimated bytes an entry takes in memory: key bytes + entry_overhead_bytes + per sample
// sizeof(token_chunk) + 4 per token + its error string, + per logprob sizeof(token_logprob) + 4 per
// top token and 4 per top logprob.
[[nodiscard]] int64_t entry_size(const cluster::cache_key& key, const cluster::cache_entry& entry);

struct lru_counters {
  int64_t hits = 0;
  int64_t misses = 0;              // absent or expired
  int64_t evictions_bytes = 0;     // removed to make room
  int64_t evictions_ttl = 0;       // removed because expired
  int64_t rejected = 0;            // larger than the whole bound: not stored
};

class lru_cache {
 public:
  // max_bytes > 0; ttl 0 = entries never expire. `now` is the clock (tests inject their own).
  lru_cache(int64_t max_bytes, std::chrono::milliseconds ttl, clock_fn now = std::chrono::steady_clock::now);
  lru_cache(const lru_cache&) = delete;
  lru_cache& operator=(const lru_cache&) = delete;

  // The entry stored under exactly these key bytes (and hash), refreshed as most recently used; a
  // copy, so the caller may move it into a message. An expired entry is removed and is a miss.
  [[nodiscard]] std::optional<cluster::cache_entry> get(const cluster::cache_key& key);

  // Stores (or replaces) the entry and evicts least recently used entries until under the bound.
  // `ttl` overrides the cache's own for this entry (e.g. what remains of it in Redis), capped by the
  // cache's own ttl when that is not 0; an override <= 0 means already expired. False when not
  // stored: expired, or the entry alone is larger than the bound (counted as rejected). Either way
  // an older entry under the key is removed.
  bool put(const cluster::cache_key& key, cluster::cache_entry entry,
           std::optional<std::chrono::milliseconds> ttl = std::nullopt);

  [[nodiscard]] const lru_counters& counters() const { return counters_; }
  [[nodiscard]] int64_t entries() const { return int64_t(items_.size()); }
  [[nodiscard]] int64_t bytes() const { return bytes_; }
  [[nodiscard]] int64_t max_bytes() const { return max_bytes_; }

 private:
  struct item {
    cluster::cache_key key;
    cluster::cache_entry entry;
    int64_t size = 0;
    std::optional<std::chrono::steady_clock::time_point> expires;  // none: never
  };
  using item_list = std::list<item>;  // most recently used first

  // A view of a key: its bytes (in the list node, which does not move, or the caller's key) and hash.
  struct key_ref {
    std::string_view bytes;
    uint64_t hash = 0;
    bool operator==(const key_ref& o) const { return hash == o.hash && bytes == o.bytes; }
  };
  struct key_ref_hash {
    size_t operator()(const key_ref& k) const { return size_t(k.hash); }
  };

  void erase(item_list::iterator it);

  int64_t max_bytes_;
  std::chrono::milliseconds ttl_;
  clock_fn now_;
  item_list items_;
  std::unordered_map<key_ref, item_list::iterator, key_ref_hash> index_;
  int64_t bytes_ = 0;
  lru_counters counters_;
};

}  // namespace troupe::cache
