// The routing policies (see routing_policy.hpp): least-outstanding, and prefix affinity by
// consistent hashing with bounded loads; one class each behind routing_policy, made by name.
#include "router/routing_policy.hpp"

#include <xxhash.h>

#include <algorithm>
#include <array>
#include <vector>

namespace troupe::router {

namespace {

// Fewest outstanding tokens, then fewest running + waiting, then lowest index. groups non-empty.
size_t least_outstanding_index(std::span<const group_load> groups) {
  size_t best = 0;
  for (size_t i = 1; i < groups.size(); ++i) {
    const group_load& g = groups[i];
    const group_load& b = groups[best];
    const int64_t queued = int64_t{g.running} + g.waiting;
    const int64_t best_queued = int64_t{b.running} + b.waiting;
    if (g.outstanding_tokens < b.outstanding_tokens ||
        (g.outstanding_tokens == b.outstanding_tokens && queued < best_queued)) {
      best = i;
    }
  }
  return best;
}

class least_outstanding_policy final : public routing_policy {
 public:
  std::optional<size_t> choose(std::span<const group_load> groups, std::span<const int32_t>) override {
    if (groups.empty()) return std::nullopt;
    return least_outstanding_index(groups);
  }
  std::string_view name() const override { return "least-outstanding"; }
};

// A ring point: XXH3-64 of (group key, replica index) in host byte order, so routers on hosts of
// one byte order agree on the ring.
uint64_t ring_point(uint64_t group_key, uint64_t replica) {
  const std::array<uint64_t, 2> input{group_key, replica};
  return XXH3_64bits(input.data(), sizeof input);
}

class prefix_affinity_policy final : public routing_policy {
 public:
  explicit prefix_affinity_policy(routing_options options) : options_(options) {}

  std::optional<size_t> choose(std::span<const group_load> groups, std::span<const int32_t> prompt) override {
    if (groups.empty()) return std::nullopt;
    const size_t blocks = std::min(prompt.size() / static_cast<size_t>(options_.block_size),
                                   static_cast<size_t>(options_.affinity_blocks));
    if (blocks == 0) return least_outstanding_index(groups);
    refresh_ring(groups);

    // This call's index of each ring slot (slots are the sorted distinct keys).
    slot_index_.assign(keys_.size(), groups.size());
    int64_t total = static_cast<int64_t>(prompt.size()) + 1;
    for (size_t i = 0; i < groups.size(); ++i) {
      const size_t slot = static_cast<size_t>(std::lower_bound(keys_.begin(), keys_.end(), groups[i].key) -
                                              keys_.begin());
      if (slot_index_[slot] == groups.size()) slot_index_[slot] = i;
      total += groups[i].outstanding_tokens;
    }
    const double bound = options_.load_bound * static_cast<double>(total) / static_cast<double>(groups.size());

    const size_t key_tokens = blocks * static_cast<size_t>(options_.block_size);
    const uint64_t key = XXH3_64bits(prompt.data(), key_tokens * sizeof(int32_t));
    const auto start = std::lower_bound(ring_.begin(), ring_.end(), key,
                                        [](const point& p, uint64_t k) { return p.hash < k; });
    const size_t first = static_cast<size_t>(start - ring_.begin());
    visited_.assign(keys_.size(), false);
    size_t distinct = 0;
    for (size_t step = 0; step < ring_.size() && distinct < keys_.size(); ++step) {
      const point& p = ring_[(first + step) % ring_.size()];
      if (visited_[p.slot]) continue;
      visited_[p.slot] = true;
      ++distinct;
      const size_t index = slot_index_[p.slot];
      if (static_cast<double>(groups[index].outstanding_tokens) <= bound) return index;
    }
    // Unreachable with load_bound >= 1 (the least loaded group is at most the mean); kept so that a
    // request is never refused by arithmetic.
    return least_outstanding_index(groups);
  }

  std::string_view name() const override { return "prefix-affinity"; }

 private:
  struct point {
    uint64_t hash;
    uint32_t slot;  // index into keys_
  };

  // Rebuilds the ring when the set of group keys differs from the one it was built for: O(n log n)
  // to compare, O(n * virtual_nodes * log) to rebuild. Points depend only on their group's key, so
  // a group joining or leaving moves only the arcs next to its own points.
  void refresh_ring(std::span<const group_load> groups) {
    scratch_keys_.clear();
    for (const group_load& g : groups) scratch_keys_.push_back(g.key);
    std::sort(scratch_keys_.begin(), scratch_keys_.end());
    scratch_keys_.erase(std::unique(scratch_keys_.begin(), scratch_keys_.end()), scratch_keys_.end());
    if (scratch_keys_ == keys_) return;
    keys_.swap(scratch_keys_);
    ring_.clear();
    ring_.reserve(keys_.size() * static_cast<size_t>(options_.virtual_nodes));
    for (size_t slot = 0; slot < keys_.size(); ++slot) {
      for (int32_t replica = 0; replica < options_.virtual_nodes; ++replica) {
        ring_.push_back({ring_point(keys_[slot], static_cast<uint64_t>(replica)), static_cast<uint32_t>(slot)});
      }
    }
    // Ties (vanishingly rare) go to the smaller key, so the order does not depend on the input's.
    std::sort(ring_.begin(), ring_.end(),
              [](const point& a, const point& b) { return a.hash != b.hash ? a.hash < b.hash : a.slot < b.slot; });
  }

  routing_options options_;
  std::vector<uint64_t> keys_;  // sorted distinct group keys the ring was built for
  std::vector<point> ring_;     // sorted by hash
  // Per-call scratch, kept to avoid allocating on every request.
  std::vector<uint64_t> scratch_keys_;
  std::vector<size_t> slot_index_;
  std::vector<bool> visited_;
};

}  // namespace

expected<std::unique_ptr<routing_policy>> make_routing_policy(std::string_view name, routing_options options) {
  if (name == "least-outstanding") return std::unique_ptr<routing_policy>(new least_outstanding_policy());
  if (name == "prefix-affinity") {
    if (options.block_size < 1) return fail("routing: block_size must be >= 1");
    if (options.affinity_blocks < 1) return fail("routing: affinity_blocks must be >= 1");
    if (!(options.load_bound >= 1)) return fail("routing: load_bound must be >= 1");
    if (options.virtual_nodes < 1) return fail("routing: virtual_nodes must be >= 1");
    return std::unique_ptr<routing_policy>(new prefix_affinity_policy(options));
  }
  return fail("unknown routing policy '" + std::string(name) + "' (known: least-outstanding, prefix-affinity)");
}

}  // namespace troupe::router
