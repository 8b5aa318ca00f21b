// Workers as child processes (see local_launcher.hpp).
#include "autoscaler/local_launcher.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <thread>

extern char** environ;

namespace troupe::autoscaler {

namespace {
constexpr size_t max_line = 4096;

// A line that reports a failure: spdlog's "[error]"/"[critical]" levels, or "error:" as the CLI
// prints its own.
bool is_error_line(const std::string& line) {
  return line.find("[error]") != std::string::npos || line.find("[critical]") != std::string::npos ||
         line.find("error:") != std::string::npos || line.find("\"level\":\"error\"") != std::string::npos;
}
}  // namespace

local_launcher::local_launcher(args_fn args_for, std::string program)
    : args_for_(std::move(args_for)), program_(std::move(program)) {}

local_launcher::~local_launcher() { stop_all(std::chrono::seconds(5)); }

void local_launcher::set_router(const std::string& host_port) {
  std::lock_guard lock(mutex_);
  router_ = host_port;
}

expected<void> local_launcher::start(const std::string& name) {
  std::lock_guard lock(mutex_);
  if (router_.empty()) return fail("worker " + name + ": no router to join yet");
  if (children_.count(name)) return fail("worker " + name + " runs already");
  auto args = args_for_(name, router_);
  if (!args) return args.err();
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail("worker " + name + ": pipe: " + std::strerror(errno));
  std::vector<char*> argv;
  argv.push_back(program_.data());
  for (auto& a : *args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);  // dup2 clears close-on-exec on fd 2
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  // The node blocks SIGINT/SIGTERM for its event loop in some threads: a child must not inherit that.
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, program_.c_str(), &actions, &attr, argv.data(), environ);
  posix_spawnattr_destroy(&attr);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return fail("worker " + name + ": cannot start a process: " + std::strerror(rc));
  }
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  child c;
  c.pid = pid;
  c.err_fd = fds[0];
  children_.emplace(name, std::move(c));
  return {};
}

void local_launcher::stop(const std::string& name, std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  auto it = children_.find(name);
  if (it == children_.end()) return;
  ::kill(it->second.pid, SIGTERM);
  it->second.kill_at = std::chrono::steady_clock::now() + grace;
}

void local_launcher::drain_output(child& c) {
  if (c.err_fd < 0) return;
  char buf[4096];
  while (true) {
    const ssize_t n = ::read(c.err_fd, buf, sizeof buf);
    if (n <= 0) {
      if (n == 0 || (errno != EAGAIN && errno != EINTR)) {  // the child closed it (it exited)
        ::close(c.err_fd);
        c.err_fd = -1;
      }
      break;
    }
    c.partial.append(buf, size_t(n));
    size_t start = 0;
    while (true) {
      const size_t nl = c.partial.find('\n', start);
      if (nl == std::string::npos) break;
      std::string line = c.partial.substr(start, nl - start);
      std::fprintf(stderr, "%s\n", line.c_str());
      if (is_error_line(line)) c.last_error = std::move(line);
      start = nl + 1;
    }
    c.partial.erase(0, start);
    if (c.partial.size() > max_line) {  // passed on as a piece of its own (and kept, cut, if an error)
      std::fprintf(stderr, "%s\n", c.partial.c_str());
      if (is_error_line(c.partial)) c.last_error = c.partial.substr(0, max_line);
      c.partial.clear();
    }
  }
}

std::vector<worker_exit> local_launcher::reap(bool wait) {
  std::vector<worker_exit> out;
  const auto now = std::chrono::steady_clock::now();
  for (auto it = children_.begin(); it != children_.end();) {
    child& c = it->second;
    drain_output(c);
    if (now >= c.kill_at) ::kill(c.pid, SIGKILL);
    int status = 0;
    const pid_t r = ::waitpid(c.pid, &status, wait ? 0 : WNOHANG);
    if (r == 0) {
      ++it;
      continue;
    }
    worker_exit e;
    e.name = it->first;
    if (r < 0)
      e.status = 255;  // not our child any more (someone else reaped it)
    else
      e.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    drain_output(c);  // what it wrote last
    if (!c.partial.empty()) {
      std::fprintf(stderr, "%s\n", c.partial.c_str());
      if (is_error_line(c.partial)) c.last_error = c.partial;
    }
    if (c.err_fd >= 0) ::close(c.err_fd);
    e.last_error = std::move(c.last_error);
    out.push_back(std::move(e));
    it = children_.erase(it);
  }
  return out;
}

std::vector<worker_exit> local_launcher::poll() {
  std::lock_guard lock(mutex_);
  return reap(false);
}

void local_launcher::stop_all(std::chrono::milliseconds grace) {
  std::lock_guard lock(mutex_);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  for (auto& [name, c] : children_) {
    ::kill(c.pid, SIGTERM);
    c.kill_at = std::min(c.kill_at, deadline);
  }
  while (!children_.empty()) {
    reap(false);
    if (children_.empty()) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

std::map<std::string, pid_t> local_launcher::pids() const {
  std::lock_guard lock(mutex_);
  std::map<std::string, pid_t> out;
  for (const auto& [name, c] : children_) out.emplace(name, c.pid);
  return out;
}

}  // namespace troupe::autoscaler
