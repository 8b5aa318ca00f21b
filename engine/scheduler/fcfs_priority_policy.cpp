// The FCFS-within-priority-class policy.
#include <tuple>

#include "engine/scheduler/scheduling_policy.hpp"

namespace troupe::engine {
namespace {

class fcfs_priority_policy final : public scheduling_policy {
 public:
  [[nodiscard]] std::string_view name() const override { return "fcfs-priority"; }
  [[nodiscard]] bool before(const seq_rank& a, const seq_rank& b) const override {
    return std::tie(a.priority, a.arrival, a.seq) < std::tie(b.priority, b.arrival, b.seq);
  }
};

}  // namespace

std::unique_ptr<scheduling_policy> make_fcfs_priority_policy() {
  return std::make_unique<fcfs_priority_policy>();
}

}  // namespace troupe::engine
