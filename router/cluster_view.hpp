// What the router actor knows about the shard groups, published for the kj thread (health, models,
// metrics) as a snapshot: the HTTP side reads it without asking the actor and waiting.
#pragma once

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "common/cluster_messages.hpp"

namespace troupe::router {

// Threading: set() from the router actor, set_model_failed() from the autoscaler, the rest from any
// thread.
class cluster_view {
 public:
  // `room`: requests the serving groups take now without waiting at the router.
  void set(std::vector<cluster::group_status> groups, int64_t room = 0) {
    std::lock_guard lock(mutex_);
    groups_ = std::move(groups);
    room_ = room;
  }
  void set_room(int64_t room) {
    std::lock_guard lock(mutex_);
    room_ = room;
  }
  // Queued requests the serving groups hold without the router's queue: their max_running plus the
  // group queue, less the sequences that have started streaming there. Admission lets that many
  // in on top of what starts within its wait.
  [[nodiscard]] int64_t room() const {
    std::lock_guard lock(mutex_);
    return room_;
  }
  [[nodiscard]] std::vector<cluster::group_status> groups() const {
    std::lock_guard lock(mutex_);
    return groups_;
  }
  // Groups alive, whatever their state (what /health reports).
  [[nodiscard]] size_t live_groups() const {
    std::lock_guard lock(mutex_);
    return groups_.size();
  }
  // Groups new requests may be routed to (state serving).
  [[nodiscard]] size_t serving_groups() const {
    std::lock_guard lock(mutex_);
    return size_t(std::count_if(groups_.begin(), groups_.end(),
                                [](const auto& g) { return g.state == cluster::group_state::serving; }));
  }

  // Requests waiting at the router for room in a group (or for a group at all): the autoscaler's
  // demand signal when no group serves.
  void set_held(int64_t n) {
    std::lock_guard lock(mutex_);
    held_ = n;
  }
  [[nodiscard]] int64_t held() const {
    std::lock_guard lock(mutex_);
    return held_;
  }
  // The last measured cold start (a worker's start to its group serving), seconds; 0: none yet.
  void set_cold_start(double s) {
    std::lock_guard lock(mutex_);
    cold_start_s_ = s;
  }
  [[nodiscard]] double cold_start() const {
    std::lock_guard lock(mutex_);
    return cold_start_s_;
  }
  // Requests are held while no group serves (scale from zero): /health says idle, not unavailable.
  void set_holding(bool on) {
    std::lock_guard lock(mutex_);
    holding_ = on;
  }
  [[nodiscard]] bool holding() const {
    std::lock_guard lock(mutex_);
    return holding_;
  }
  // The autoscaler marked the model failed (its workers kept failing): why, with the last worker
  // error; empty while it has not.
  void set_model_failed(std::string why) {
    std::lock_guard lock(mutex_);
    model_failed_ = std::move(why);
  }
  [[nodiscard]] std::string model_failed() const {
    std::lock_guard lock(mutex_);
    return model_failed_;
  }

 private:
  mutable std::mutex mutex_;
  std::vector<cluster::group_status> groups_;
  int64_t room_ = 0;
  std::string model_failed_;
  int64_t held_ = 0;
  double cold_start_s_ = 0;
  bool holding_ = false;
};

}  // namespace troupe::router
