// The worker processes `troupe up` starts: spawned with this binary, stopped with SIGTERM (then
// SIGKILL after a grace period) when the cluster stops.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace troupe::cli {

class child_processes {
 public:
  child_processes() = default;
  child_processes(const child_processes&) = delete;
  child_processes& operator=(const child_processes&) = delete;
  ~child_processes() { stop_all(std::chrono::seconds(5)); }

  // Starts `/proc/self/exe args...` with an empty signal mask (the parent's node blocks SIGINT and
  // SIGTERM for its event loop; a child must not inherit that).
  [[nodiscard]] expected<pid_t> spawn(const std::vector<std::string>& args);

  // SIGTERM to every child, then SIGKILL to those still running after `grace`; reaps them all.
  void stop_all(std::chrono::milliseconds grace);

  [[nodiscard]] const std::vector<pid_t>& pids() const { return pids_; }

 private:
  std::vector<pid_t> pids_;
};

}  // namespace troupe::cli
