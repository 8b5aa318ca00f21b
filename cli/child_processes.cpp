// Spawning and stopping worker processes (see child_processes.hpp).
#include "cli/child_processes.hpp"

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

extern char** environ;

namespace troupe::cli {

expected<pid_t> child_processes::spawn(const std::vector<std::string>& args) {
  std::vector<char*> argv;
  static char self[] = "/proc/self/exe";
  argv.push_back(self);
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/proc/self/exe", nullptr, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return fail(std::string("cannot start a worker process: ") + std::strerror(rc));
  pids_.push_back(pid);
  return pid;
}

void child_processes::stop_all(std::chrono::milliseconds grace) {
  for (pid_t p : pids_) ::kill(p, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  std::vector<pid_t> left = pids_;
  while (!left.empty()) {
    std::erase_if(left, [](pid_t p) {
      int status = 0;
      const pid_t r = ::waitpid(p, &status, WNOHANG);
      return r == p || (r < 0 && errno == ECHILD);
    });
    if (left.empty()) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      for (pid_t p : left) {
        ::kill(p, SIGKILL);
        ::waitpid(p, nullptr, 0);
      }
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  pids_.clear();
}

}  // namespace troupe::cli
