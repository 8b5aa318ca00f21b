// The in-memory LRU tier of the response cache (see lru_cache.hpp).
#include "cache_actor/lru_cache.hpp"

#include <utility>

namespace troupe::cache {

int64_t entry_size(const cluster::cache_key& key, const cluster::cache_entry& entry) {
  int64_t size = int64_t(key.bytes.size()) + entry_overhead_bytes;
  for (const auto& s : entry.samples) {
    size += int64_t(sizeof(cluster::token_chunk)) + int64_t(s.tokens.size()) * 4 + int64_t(s.error.message.size() + s.error.param.size());
    for (const auto& lp : s.logprobs)
      size += int64_t(sizeof(cluster::token_logprob)) + int64_t(lp.top_tokens.size()) * 4 +
              int64_t(lp.top_logprobs.size()) * 4;
  }
  return size;
}

lru_cache::lru_cache(int64_t max_bytes, std::chrono::milliseconds ttl, clock_fn now)
    : max_bytes_(max_bytes), ttl_(ttl), now_(std::move(now)) {}

void lru_cache::erase(item_list::iterator it) {
  index_.erase(key_ref{it->key.bytes, it->key.hash});
  bytes_ -= it->size;
  items_.erase(it);
}

std::optional<cluster::cache_entry> lru_cache::get(const cluster::cache_key& key) {
  auto found = index_.find(key_ref{key.bytes, key.hash});
  if (found == index_.end()) {
    ++counters_.misses;
    return std::nullopt;
  }
  auto it = found->second;
  if (it->expires && now_() >= *it->expires) {
    erase(it);
    ++counters_.evictions_ttl;
    ++counters_.misses;
    return std::nullopt;
  }
  items_.splice(items_.begin(), items_, it);  // most recently used; iterators stay valid
  ++counters_.hits;
  return it->entry;
}

bool lru_cache::put(const cluster::cache_key& key, cluster::cache_entry entry,
                    std::optional<std::chrono::milliseconds> ttl) {
  if (auto old = index_.find(key_ref{key.bytes, key.hash}); old != index_.end()) erase(old->second);
  if (ttl && ttl->count() <= 0) return false;  // already expired
  const int64_t size = entry_size(key, entry);
  if (size > max_bytes_) {
    ++counters_.rejected;
    return false;
  }
  std::chrono::milliseconds life = ttl_;
  if (ttl && (ttl_.count() == 0 || *ttl < ttl_)) life = *ttl;
  item fresh{key, std::move(entry), size, std::nullopt};
  if (life.count() > 0) fresh.expires = now_() + life;
  items_.push_front(std::move(fresh));
  index_.emplace(key_ref{items_.front().key.bytes, items_.front().key.hash}, items_.begin());
  bytes_ += size;
  while (bytes_ > max_bytes_) {  // the new entry fits alone, so this stops before reaching it
    auto last = std::prev(items_.end());
    const bool expired = last->expires && now_() >= *last->expires;
    erase(last);
    ++(expired ? counters_.evictions_ttl : counters_.evictions_bytes);
  }
  return true;
}

}  // namespace troupe::cache
