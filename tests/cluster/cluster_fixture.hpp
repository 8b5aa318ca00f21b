// A real local cluster for the tests: `troupe up` (the router in one process, worker processes
// joined to it) started on free loopback ports and stopped by PID.
#pragma once

#include <gtest/gtest.h>
#include <signal.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include <simdjson.h>

#include "engine/tiny_model.hpp"
#include "tests/cluster/http_client.hpp"
#include "tests/test_tmp.hpp"

extern char** environ;

namespace troupe::test {

// Runs the troupe binary with `args`, output to `log`; returns its pid.
inline pid_t spawn_troupe(const std::vector<std::string>& args, const std::string& log) {
  std::vector<char*> argv;
  std::string bin = TROUPE_BIN;
  argv.push_back(bin.data());
  for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, bin.c_str(), &fa, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  EXPECT_EQ(rc, 0) << "cannot start " << bin;
  return rc == 0 ? pid : -1;
}

// Waits for `pid` to exit; SIGKILL after `timeout`. Returns the wait status, or -1 if it had to be killed.
inline int stop_process(pid_t pid, std::chrono::seconds timeout, int sig = SIGTERM) {
  if (pid <= 0) return -1;
  ::kill(pid, sig);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (std::chrono::steady_clock::now() < deadline) {
    if (::waitpid(pid, &status, WNOHANG) == pid) return status;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, &status, 0);
  return -1;
}

// A make-tiny model named `name` (the name clients use) with a context of `max_position`, written
// once per test process.
inline std::string cluster_model(const std::string& name, int64_t max_position, int64_t layers = 4) {
  const std::string dir = process_tmp() + "/" + name;
  if (!std::filesystem::exists(dir + "/config.json")) {
    engine::tiny_model_spec spec;
    spec.max_position = max_position;
    spec.layers = layers;
    auto ok = engine::make_tiny_model(spec, dir);
    EXPECT_TRUE(ok) << ok.message();
  }
  return dir;
}

// A command's stdout (and stderr, when the command says 2>&1).
inline std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

// A top-level string field of a JSON object, or a marker saying why there is none.
inline std::string json_string_field(const std::string& json, const char* field) {
  simdjson::dom::parser parser;
  auto doc = parser.parse(json);
  if (doc.error()) return "<not json: " + json + ">";
  std::string_view v;
  if (doc[field].get(v)) return "<no field " + std::string(field) + ">";
  return std::string(v);
}

inline std::string read_file(const std::string& path) {
  std::ifstream f(path);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

// Resident memory of process `pid` in kB (-1 if it is gone).
inline long rss_kb(pid_t pid) {
  const std::string status = read_file("/proc/" + std::to_string(pid) + "/status");
  const auto at = status.find("VmRSS:");
  return at == std::string::npos ? -1 : std::atol(status.c_str() + at + 6);
}

// Seconds until the peer closes socket `fd` (whatever it sends is appended to `received`); -1 if
// it is still open after `within`. The socket needs a receive timeout (SO_RCVTIMEO).
inline double seconds_until_closed(int fd, std::chrono::milliseconds within, std::string* received = nullptr) {
  const auto start = std::chrono::steady_clock::now();
  while (std::chrono::steady_clock::now() - start < within) {
    char buf[4096];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
      return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (n > 0 && received) received->append(buf, size_t(n));
  }
  return -1;
}

// One gauge per group from /metrics: group name -> value.
inline std::map<std::string, double> group_gauge(const std::string& metrics, const std::string& name) {
  std::map<std::string, double> out;
  const std::regex re(name + "\\{group=\"([^\"]+)\"\\} ([-0-9.e+]+)");
  for (auto it = std::sregex_iterator(metrics.begin(), metrics.end(), re); it != std::sregex_iterator(); ++it)
    out[(*it)[1]] = std::stod((*it)[2]);
  return out;
}

// This test process's cluster CA and the node folder `name` it issued (`troupe cluster certs`), for
// `--cluster-certs`: nodes started by hand speak mutual TLS as by default.
inline std::string node_certs(const std::string& name = "node") {
  const std::string out = process_tmp() + "/certs";
  if (!std::filesystem::exists(out + "/" + name + "/node.pem")) {
    const std::string log = run_capture(std::string(TROUPE_BIN) + " cluster certs --out " + out + " --hosts " + name + " 2>&1");
    EXPECT_TRUE(std::filesystem::exists(out + "/" + name + "/node.pem")) << log;
  }
  return out + "/" + name;
}

class local_cluster {
 public:
  // Starts `troupe up` and waits until `workers` shard groups are live (or fails the test).
  local_cluster(const std::string& model, int workers, std::vector<std::string> extra = {})
      : local_cluster(workers, [&]() {
          std::vector<std::string> args = {"up", "--model", model, "--workers", std::to_string(workers),
                                           "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0",
                                           "--threads", "1", "--kv-memory", std::to_string(64 << 20)};
          args.insert(args.end(), extra.begin(), extra.end());
          return args;
        }()) {}

  // Any troupe command that serves HTTP (`up`, `node --roles router,...`); --port-file is added.
  // `auth`: a header line ("Authorization: Bearer K\r\n") for /health and /metrics.
  local_cluster(int workers, std::vector<std::string> args, std::string auth = {}) : auth_(std::move(auth)) {
    dir_ = process_tmp() + "/cluster-" + std::to_string(++counter());
    std::filesystem::create_directories(dir_);
    log_ = dir_ + "/up.log";
    args.push_back("--port-file");
    args.push_back(dir_ + "/ports");
    pid_ = spawn_troupe(args, log_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (std::chrono::steady_clock::now() < deadline) {
      const std::string ports = read_file(dir_ + "/ports");
      if (auto at = ports.find("http="); at != std::string::npos) port_ = uint16_t(std::atoi(ports.c_str() + at + 5));
      if (port_ && live_groups() == workers) return;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        break;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "the cluster did not come up with " << workers << " groups; log:\n" << read_file(log_);
  }
  ~local_cluster() {
    const int status = stop_process(pid_, std::chrono::seconds(15));
    EXPECT_TRUE(pid_ < 0 || (status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0))
        << "troupe up did not stop cleanly on SIGTERM; log:\n" << read_file(log_);
  }

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }
  // Waits up to `timeout` for the process to exit (after a signal the test sent): its wait status,
  // or -1 when it is still running (then the destructor stops it).
  int wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    int status = 0;
    while (pid_ > 0 && std::chrono::steady_clock::now() < deadline) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return -1;
  }
  // The Cap'n Proto API's port ("rpc=" in the port file; 0 when not started with --rpc).
  [[nodiscard]] uint16_t rpc_port() const {
    const std::string ports = read_file(dir_ + "/ports");
    const auto at = ports.find("rpc=");
    return at == std::string::npos ? 0 : uint16_t(std::atoi(ports.c_str() + at + 4));
  }
  // The cluster (CAF) port workers join ("cluster=" in the port file).
  [[nodiscard]] uint16_t cluster_port() const {
    const std::string ports = read_file(dir_ + "/ports");
    const auto at = ports.find("cluster=");
    return at == std::string::npos ? 0 : uint16_t(std::atoi(ports.c_str() + at + 8));
  }
  [[nodiscard]] std::string log() const { return read_file(log_); }
  // True once the log holds `text`, waiting up to `within` (workers' lines reach it through `up`,
  // which passes them on every autoscaler tick).
  [[nodiscard]] bool log_has(const std::string& text, std::chrono::milliseconds within = std::chrono::seconds(5)) const {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (log().find(text) == std::string::npos) {
      if (std::chrono::steady_clock::now() >= deadline) return false;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return true;
  }

  [[nodiscard]] int live_groups() const {
    auto r = http_request(port_, "GET", "/health", "", auth_);
    const auto at = r.body.find("\"live_groups\":");
    return at == std::string::npos ? -1 : std::atoi(r.body.c_str() + at + 14);
  }
  [[nodiscard]] std::string metrics() const { return http_request(port_, "GET", "/metrics", "", auth_).body; }

  // The worker pids: from the group names (HOST:PID/0) of workers started by hand, else (`troupe
  // up` names its workers w0, w1, ...) its child processes.
  [[nodiscard]] std::vector<pid_t> worker_pids() const {
    std::vector<pid_t> pids;
    for (const auto& [name, v] : group_gauge(metrics(), "troupe_group_running")) {
      const size_t colon = name.rfind(':'), slash = name.rfind('/');
      if (colon == std::string::npos || slash == std::string::npos) return child_pids();
      pids.push_back(pid_t(std::atoi(name.substr(colon + 1, slash - colon - 1).c_str())));
    }
    return pids;
  }
  // The children of the `up` process (from every thread's /proc children list), oldest first.
  [[nodiscard]] std::vector<pid_t> child_pids() const {
    std::vector<pid_t> pids;
    std::error_code ec;
    for (const auto& task : std::filesystem::directory_iterator("/proc/" + std::to_string(pid_) + "/task", ec)) {
      std::istringstream in(read_file(task.path().string() + "/children"));
      for (pid_t p; in >> p;) pids.push_back(p);
    }
    std::sort(pids.begin(), pids.end());
    return pids;
  }

 private:
  static int& counter() {
    static int n = 0;
    return n;
  }
  std::string dir_, log_, auth_;
  pid_t pid_ = -1;
  uint16_t port_ = 0;
};

}  // namespace troupe::test
