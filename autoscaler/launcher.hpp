// How the autoscaler starts and stops workers: one interface, so that local child processes (for
// `troupe up`), SSH, Slurm and Kubernetes launchers are interchangeable. A worker, once started,
// joins the router by itself and registers its shard group under the name it was started with;
// the autoscaler learns it is up from the registry, not from the launcher.
//
// Threading: the autoscaler actor calls start/stop/poll; stop_all runs on the node's main thread
// once the actor has stopped. Implementations lock what they share.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "common/expected.hpp"

namespace troupe::autoscaler {

// A worker that is gone, reaped.
struct worker_exit {
  std::string name;        // the group name it was started under
  int status = 0;          // its exit code, or 128 + the signal that ended it
  std::string last_error;  // its last error line (empty when it logged none)
};

class launcher {
 public:
  virtual ~launcher() = default;
  // Where workers join: the router's cluster port (HOST:PORT). Set once, before the first start.
  virtual void set_router(const std::string& host_port) = 0;
  // Starts a worker serving shard group `name`; returns at once (the worker is up when its group
  // registers). An error only when it could not even be started, and why.
  [[nodiscard]] virtual expected<void> start(const std::string& name) = 0;
  // Asks worker `name` to stop (it drains its group first); killed if it still runs after `grace`.
  virtual void stop(const std::string& name, std::chrono::milliseconds grace) = 0;
  // The workers that exited since the last call. Never blocks.
  [[nodiscard]] virtual std::vector<worker_exit> poll() = 0;
  // Stops every worker (drain, then kill after `grace`) and waits for them.
  virtual void stop_all(std::chrono::milliseconds grace) = 0;
  // "local processes": for log lines.
  [[nodiscard]] virtual std::string describe() const = 0;
};

}  // namespace troupe::autoscaler
