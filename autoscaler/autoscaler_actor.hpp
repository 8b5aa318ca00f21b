// The autoscaler actor: keeps a model's shard groups at the number its scaling policy wants.
//
// It follows the registry (subscribe: joins, leaves, load reports every second) and acts through a
// launcher. Every tick (--scale-tick, 0.25 s) it:
//   - reaps workers that exited; one that was not being drained failed: it is replaced, after an
//     exponential backoff (0.5 s, doubling to 30 s) while workers keep failing; after
//     max_failures within failure_window_s the model is marked failed (no more starts; the last
//     error in the log and the metrics) and, if no worker ever served, `give_up` ends the node
//     with a non-zero exit;
//   - stops a worker whose group has not registered within start_timeout_s (counted as a failure);
//   - asks the policy for the replicas wanted, clamps it to [min, max], and starts one worker, or
//     drains the least loaded serving group (never one still starting) through the registry:
//     nothing new is routed to it, its requests finish, then its worker exits by itself (stopped by
//     the launcher if it still runs 5 s past --drain-timeout). One change per tick; in dry-run it
//     only logs what it would do.
// Every decision is a log line with its reason and a counter by direction; gauges give the desired
// and actual replicas and whether the model failed.
//
// Threading: the launcher is called from the actor only; give_up may be called on the actor's thread.
#pragma once

#include <caf/actor_system.hpp>
#include <functional>
#include <memory>
#include <string>

#include "autoscaler/launcher.hpp"
#include "autoscaler/scaling_policy.hpp"
#include "common/actors.hpp"
#include "common/metrics.hpp"

namespace troupe::autoscaler {

struct autoscaler_options {
  std::string model;                  // the model's name, for log lines
  std::string group_prefix = "w";     // workers are named prefix + a number
  int32_t min_replicas = 1;
  int32_t max_replicas = 1;
  bool dry_run = false;               // log the policy's changes without acting (keep min, replacing the dead)
  double tick_s = 0.25;
  double start_timeout_s = 120;       // a started worker's group must register within it
  double drain_timeout_s = 30;        // a drained worker still running 5 s past it is stopped
  int32_t max_failures = 5;           // within failure_window_s: the model is marked failed
  double failure_window_s = 60;
  double backoff_initial_s = 0.5;
  double backoff_max_s = 30;
};

struct autoscaler_parts {
  std::shared_ptr<launcher> workers;
  std::unique_ptr<scaling_policy> policy;
  cluster::registry_actor registry;
  metrics_registry* metrics = nullptr;  // may be null; outlives the actor
  // Ends the node with this exit code (no worker could start at all); the string is why.
  std::function<void(int, const std::string&)> give_up;
  // The model is marked failed, and why (for /health); may be empty.
  std::function<void(const std::string&)> on_failed;
  // Requests waiting at the router (the demand when no group serves); may be empty.
  std::function<int64_t()> held;
  // A worker's measured cold start, seconds (the router's Retry-After while none serves); may be empty.
  std::function<void(double)> on_cold_start;
};

[[nodiscard]] cluster::autoscaler_actor spawn_autoscaler(caf::actor_system& system, autoscaler_options options,
                                                         autoscaler_parts parts);

}  // namespace troupe::autoscaler
