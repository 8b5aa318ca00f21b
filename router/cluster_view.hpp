// What the router actor knows about the shard groups, published for the kj thread (health, models,
// metrics) as a snapshot: the HTTP side reads it without asking the actor and waiting.
#pragma once

#include <cstdint>
#include <mutex>
#include <vector>

#include "common/cluster_messages.hpp"

namespace troupe::router {

struct group_snapshot {
  cluster::group_info info;
  cluster::load_report load;      // the last report (zeros until the first)
  int64_t outstanding_tokens = 0; // of requests routed to it and not finished
  int64_t in_flight = 0;          // requests routed to it and not finished
  int64_t routed = 0;             // requests routed to it since it joined
};

// Threading: set() from the router actor, the rest from any thread.
class cluster_view {
 public:
  void set(std::vector<group_snapshot> groups) {
    std::lock_guard lock(mutex_);
    groups_ = std::move(groups);
  }
  [[nodiscard]] std::vector<group_snapshot> groups() const {
    std::lock_guard lock(mutex_);
    return groups_;
  }
  [[nodiscard]] size_t live_groups() const {
    std::lock_guard lock(mutex_);
    return groups_.size();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<group_snapshot> groups_;
};

}  // namespace troupe::router
