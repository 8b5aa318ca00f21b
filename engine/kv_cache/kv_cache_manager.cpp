// Block tables, prefix caching and copy-on-write forks over the block pool.
#include "engine/kv_cache/kv_cache_manager.hpp"

#include <algorithm>
#include <cassert>
#include <string>

namespace troupe::engine {

kv_cache_manager::kv_cache_manager(block_pool& pool, kv_cache_config config)
    : pool_(pool), config_(std::move(config)), root_hash_(revision_root_hash(config_.model_revision)) {}

prefix_match kv_cache_manager::find_cached_prefix(std::span<const int32_t> tokens) const {
  prefix_match m;
  m.num_query_tokens = int64_t(tokens.size());
  if (!config_.enable_prefix_caching || tokens.empty()) return m;
  const int64_t bs = block_size();
  const int64_t max_blocks = (int64_t(tokens.size()) - 1) / bs;  // leave the last token to compute
  uint64_t parent_hash = root_hash_;
  uint64_t parent_serial = 0;
  for (int64_t i = 0; i < max_blocks; ++i) {
    const auto chunk = tokens.subspan(size_t(i * bs), size_t(bs));
    const uint64_t h = config_.hash(parent_hash, chunk);
    int32_t id = -1;
    const auto key = pool_.lookup(h, root_hash_, parent_serial, chunk, &id);
    if (!key) break;
    m.blocks.ids.push_back(id);
    m.keys.push_back(*key);
    parent_hash = key->hash;
    parent_serial = key->serial;
  }
  m.num_tokens = int64_t(m.blocks.ids.size()) * bs;
  return m;
}

namespace {

// The prefix of `cached` whose blocks still hold the entries it was found with.
size_t valid_prefix(const block_pool& pool, const prefix_match& cached) {
  size_t n = 0;
  while (n < cached.blocks.ids.size() && n < cached.keys.size() &&
         pool.serial(cached.blocks.ids[n]) == cached.keys[n].serial && cached.keys[n].serial != 0)
    ++n;
  return n;
}

}  // namespace

int32_t kv_cache_manager::blocks_needed(seq_id seq, int64_t num_new_tokens, const prefix_match* cached) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end() || it->second.slots == 0) {
    const size_t hits = cached ? valid_prefix(pool_, *cached) : 0;
    int32_t from_queue = 0;  // cached blocks that are free leave the queue too
    for (size_t i = 0; i < hits; ++i) from_queue += pool_.ref_count(cached->blocks.ids[i]) == 0 ? 1 : 0;
    const int64_t have = int64_t(hits) * block_size();
    return blocks_for(have + num_new_tokens) - int32_t(hits) + from_queue;
  }
  const seq_state& s = it->second;
  int32_t need = blocks_for(s.slots + num_new_tokens) - int32_t(s.blocks.size());
  if (num_new_tokens > 0 && s.slots % block_size() != 0 && pool_.ref_count(s.blocks.back()) > 1) ++need;
  return need;
}

allocation kv_cache_manager::allocate_slots(seq_id seq, int64_t num_new_tokens, const prefix_match* cached) {
  allocation out;
  if (num_new_tokens < 0) return out;
  const int32_t need = blocks_needed(seq, num_new_tokens, cached);
  if (need > pool_.num_free()) {
    out.blocks_needed = need;
    out.blocks_available = pool_.num_free();
    return out;
  }
  seq_state& s = seqs_[seq];
  if (s.slots == 0 && cached) {
    const size_t hits = valid_prefix(pool_, *cached);
    for (size_t i = 0; i < hits; ++i) {
      pool_.ref(cached->blocks.ids[i]);
      s.blocks.push_back(cached->blocks.ids[i]);
      s.keys.push_back(cached->keys[i]);
    }
    s.slots = int64_t(hits) * block_size();
    ++stats_.prefix_queries;
    stats_.prefix_query_tokens += cached->num_query_tokens;
    stats_.prefix_hit_tokens += s.slots;
  }
  const bool cow = num_new_tokens > 0 && s.slots % block_size() != 0 && pool_.ref_count(s.blocks.back()) > 1;
  const int32_t fresh = blocks_for(s.slots + num_new_tokens) - int32_t(s.blocks.size()) + (cow ? 1 : 0);
  auto got = pool_.allocate(fresh);
  assert(got);  // checked above: the refs taken on cached blocks were counted in `need`
  size_t next = 0;
  if (cow) {
    const int32_t dst = (*got)[next++];
    out.copies.push_back({s.blocks.back(), dst});
    pool_.unref(s.blocks.back());
    s.blocks.back() = dst;
  }
  for (; next < got->size(); ++next) {
    s.blocks.push_back((*got)[next]);
    out.new_blocks.ids.push_back((*got)[next]);
  }
  s.slots += num_new_tokens;
  out.ok = true;
  return out;
}

expected<void> kv_cache_manager::commit_full_blocks(seq_id seq, std::span<const int32_t> tokens) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return fail("kv cache: commit_full_blocks: unknown sequence " + std::to_string(seq));
  seq_state& s = it->second;
  if (int64_t(tokens.size()) > s.slots)
    return fail("kv cache: commit_full_blocks: " + std::to_string(tokens.size()) + " tokens for sequence " +
                std::to_string(seq) + " that has " + std::to_string(s.slots) + " slots");
  if (!config_.enable_prefix_caching) return {};
  const int64_t bs = block_size();
  const size_t full = tokens.size() / size_t(bs);
  for (size_t i = s.keys.size(); i < full; ++i) {
    const uint64_t parent_hash = i == 0 ? root_hash_ : s.keys[i - 1].hash;
    const uint64_t parent_serial = i == 0 ? 0 : s.keys[i - 1].serial;
    const auto chunk = tokens.subspan(i * size_t(bs), size_t(bs));
    const uint64_t h = config_.hash(parent_hash, chunk);
    if (i > 0 && parent_serial == 0) {  // the parent's content is not cached: nor is this block's
      s.keys.push_back({h, 0});
      continue;
    }
    std::optional<block_key> existing;
    const auto key = pool_.cache(s.blocks[i], h, root_hash_, parent_serial, chunk, &existing);
    if (key) s.keys.push_back(*key);
    else if (existing) s.keys.push_back(*existing);  // a duplicate: chain on the cached copy
    else s.keys.push_back({h, 0});                   // a collision: this chain is not cached
  }
  return {};
}

bool kv_cache_manager::free(seq_id seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return false;
  const auto& blocks = it->second.blocks;
  for (auto b = blocks.rbegin(); b != blocks.rend(); ++b) pool_.unref(*b);
  seqs_.erase(it);
  return true;
}

expected<void> kv_cache_manager::fork(seq_id parent, seq_id child) {
  auto it = seqs_.find(parent);
  if (it == seqs_.end()) return fail("kv cache: fork: unknown parent sequence " + std::to_string(parent));
  if (seqs_.count(child)) return fail("kv cache: fork: sequence " + std::to_string(child) + " already exists");
  seq_state copy = it->second;
  for (int32_t b : copy.blocks) pool_.ref(b);
  seqs_.emplace(child, std::move(copy));
  return {};
}

std::span<const int32_t> kv_cache_manager::block_table(seq_id seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.blocks;
}

int64_t kv_cache_manager::num_slots(seq_id seq) const {
  auto it = seqs_.find(seq);
  return it == seqs_.end() ? 0 : it->second.slots;
}

std::vector<seq_id> kv_cache_manager::seq_ids() const {
  std::vector<seq_id> out;
  out.reserve(seqs_.size());
  for (const auto& [id, s] : seqs_) out.push_back(id);
  std::sort(out.begin(), out.end());
  return out;
}

kv_cache_stats kv_cache_manager::stats() const {
  kv_cache_stats st = stats_;
  st.blocks_total = pool_.num_blocks();
  st.blocks_used = pool_.num_blocks() - pool_.num_free();
  st.blocks_cached = pool_.num_cached();
  st.evictions = pool_.evictions();
  return st;
}

}  // namespace troupe::engine
