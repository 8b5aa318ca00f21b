// Scheduling policies: the order in which sequences are served (waiting requests admitted, running
// ones planned) and, from the other end, which running sequence is preempted first.
// Threading: policies are immutable after construction; any thread may read them.
#pragma once

#include <cstdint>
#include <memory>
#include <string_view>

#include "engine/kv_cache/kv_blocks.hpp"

namespace troupe::engine {

// What a policy may look at.
struct seq_rank {
  int32_t priority = 0;  // lower is more important
  int64_t arrival = 0;   // request arrival order (forked sequences share their request's)
  seq_id seq = 0;        // tie-break: parent before its forks
};

class scheduling_policy {
 public:
  virtual ~scheduling_policy() = default;
  [[nodiscard]] virtual std::string_view name() const = 0;
  // A strict weak order: true when `a` is served before `b`. The last in this order is preempted
  // first.
  [[nodiscard]] virtual bool before(const seq_rank& a, const seq_rank& b) const = 0;
};

// Priority class first (lower first), then arrival (FCFS), then sequence id.
[[nodiscard]] std::unique_ptr<scheduling_policy> make_fcfs_priority_policy();

}  // namespace troupe::engine
