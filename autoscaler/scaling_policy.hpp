// How many shard groups a model should have: one class per policy behind this interface, made by
// make_scaling_policy. A policy sees the serving groups' load as the registry reports it and returns
// the replicas it wants and why; the autoscaler actor clamps that to [min, max], limits the pace,
// and acts (or only logs, in dry-run). Policies keep their own history (stabilization windows), so
// decide() is called on every tick, with the time passed in (tests drive it with their own clock).
//
// Policies:
//   fixed   keep min replicas (min = max = --workers in `troupe up`).
//   target  target tracking on one signal averaged over the serving groups: "outstanding" (prompt +
//           max_tokens of the requests in flight, per group), "kv" (KV cache used, fraction),
//           "waiting" (requests the groups have queued) or "queue" (seconds from arrival at the
//           group to first token, p90, from each group's load report). Wanted = ceil(current x signal / target);
//           up to the smallest wish of the last up-window (a burst must last), down to the largest
//           wish of the last down-window (no flapping), and down by one only when the groups left
//           stay under the target at load x N/(N-1). Zero traffic: the signal is 0, so min. From
//           zero (min 0): a request held at the router asks for one group at once, no window.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace troupe::autoscaler {

using clock = std::chrono::steady_clock;

// One serving group's load, from its last report and the router's books.
struct group_load {
  std::string name;
  int32_t running = 0;
  int32_t waiting = 0;
  int64_t in_flight = 0;
  int64_t outstanding_tokens = 0;
  double kv_used = 0;  // fraction of its KV blocks in use
  double queue_delay_p90_s = 0;  // arrival at the group to first token, p90 of its last report
};

struct observation {
  clock::time_point now;
  int32_t current = 0;              // replicas running or starting (not draining)
  std::vector<group_load> serving;  // the serving groups
  int64_t held = 0;                 // requests waiting at the router (for room, or for any group)
};

struct decision {
  int32_t desired = 0;
  std::string reason;  // "queue ... > target ...": for the log line and `autoscaler explain`
};

struct scaling_config {
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  std::string signal = "outstanding";  // target: outstanding | kv | waiting | queue
  double target = 2048;                // target: the signal's value per group
  double up_window_s = 10;
  double down_window_s = 60;
};

class scaling_policy {
 public:
  virtual ~scaling_policy() = default;
  [[nodiscard]] virtual decision decide(const observation& o) = 0;
  [[nodiscard]] virtual std::string_view name() const = 0;
};

// "fixed" or "target"; an error names a bad name, signal, target, window or bound.
[[nodiscard]] expected<std::unique_ptr<scaling_policy>> make_scaling_policy(const std::string& name,
                                                                           const scaling_config& config);

}  // namespace troupe::autoscaler
