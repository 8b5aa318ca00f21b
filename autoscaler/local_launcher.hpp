// Workers as child processes of this node (`troupe up`): `/proc/self/exe node --roles worker ...`,
// their stderr read through a pipe, passed on line by line to this process's stderr and its last
// error line kept for the autoscaler's report. Children are reaped in poll(); stop is SIGTERM (the
// worker drains its group), then SIGKILL once the grace has passed.
//
// Bounds: a line longer than 4 KiB is passed on in pieces; each child's pipe is read whenever
// poll() runs (every autoscaler tick), so a child logging more than the pipe holds (64 KiB) between
// two ticks waits on its write for the next one.
#pragma once

#include <sys/types.h>

#include <functional>
#include <map>
#include <mutex>

#include "autoscaler/launcher.hpp"

namespace troupe::autoscaler {

class local_launcher final : public launcher {
 public:
  // `args_for(name, router)`: the arguments after the program for worker `name` joining `router`
  // (its certificates issued by then); an error stops that start.
  using args_fn = std::function<expected<std::vector<std::string>>(const std::string& name, const std::string& router)>;
  // `program`: what runs (this binary by default; tests run a shell).
  explicit local_launcher(args_fn args_for, std::string program = "/proc/self/exe");
  ~local_launcher() override;
  local_launcher(const local_launcher&) = delete;
  local_launcher& operator=(const local_launcher&) = delete;

  void set_router(const std::string& host_port) override;
  [[nodiscard]] expected<void> start(const std::string& name) override;
  void stop(const std::string& name, std::chrono::milliseconds grace) override;
  [[nodiscard]] std::vector<worker_exit> poll() override;
  void stop_all(std::chrono::milliseconds grace) override;
  [[nodiscard]] std::string describe() const override { return "local processes"; }

  // The pids of the workers running now, by name (tests and logs).
  [[nodiscard]] std::map<std::string, pid_t> pids() const;

 private:
  struct child {
    pid_t pid = 0;
    int err_fd = -1;        // read end of its stderr
    std::string partial;    // an unfinished line
    std::string last_error;
    std::chrono::steady_clock::time_point kill_at = std::chrono::steady_clock::time_point::max();
  };
  void drain_output(child& c);
  std::vector<worker_exit> reap(bool wait);

  args_fn args_for_;
  std::string program_;
  std::string router_;
  mutable std::mutex mutex_;
  std::map<std::string, child> children_;
};

}  // namespace troupe::autoscaler
