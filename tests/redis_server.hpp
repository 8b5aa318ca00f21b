// A real redis-server for the tests: started on a free loopback port (no persistence), ready once it
// answers PING, killed by its PID when the fixture ends, however the test ended.
//
// The child asks the kernel to SIGKILL it when the thread that started it dies (PR_SET_PDEATHSIG),
// so even a test process that crashes leaves no server behind. Hence fork + execv rather than
// posix_spawn (which cannot set that); between the two the child calls async-signal-safe functions
// only, as a multithreaded parent requires.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "tests/test_tmp.hpp"

namespace troupe::cache::test {

// The redis-server binary, or empty when it is not installed.
inline std::string redis_server_path() {
  for (const char* p : {"/usr/bin/redis-server", "/usr/local/bin/redis-server"})
    if (::access(p, X_OK) == 0) return p;
  return {};
}

// A port nothing listens on now (the kernel's pick; a race with other processes is possible but rare).
inline uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0)
    port = ntohs(a.sin_port);
  ::close(fd);
  return port;
}

class redis_server {
 public:
  explicit redis_server(uint16_t port = free_port()) : port_(port) {}
  ~redis_server() { kill_now(); }
  redis_server(const redis_server&) = delete;
  redis_server& operator=(const redis_server&) = delete;

  [[nodiscard]] uint16_t port() const { return port_; }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] bool running() const { return pid_ > 0; }

  // Starts the server and waits (up to 10 s) until it answers PING; false if it does not.
  bool start() {
    const std::string path = redis_server_path();
    if (path.empty() || port_ == 0) return false;
    const std::string dir = troupe::test::process_tmp();
    const std::string log = dir + "/redis-" + std::to_string(port_) + ".log";
    std::vector<std::string> args = {path, "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                     "--save", "", "--appendonly", "no", "--daemonize", "no",
                                     "--dir", dir, "--logfile", log};
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) return false;
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(1);  // the parent died before prctl
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    pid_ = pid;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {  // it exited: port taken, bad option...
        pid_ = -1;
        return false;
      }
      if (command("PING") == "PONG") return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    kill_now();
    return false;
  }

  // SIGKILL, as a crash or an OOM kill would, and reaps it.
  void kill_now() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = -1;
  }

  // Runs one command (binary-safe arguments) on a fresh connection; the reply as text (a string,
  // status, error or integer), none when the server did not answer.
  std::optional<std::string> command(std::vector<std::string> args) const {
    timeval tv{1, 0};
    redisContext* c = redisConnectWithTimeout("127.0.0.1", port_, tv);
    if (c == nullptr) return std::nullopt;
    std::optional<std::string> out;
    if (!c->err) {
      std::vector<const char*> argv;
      std::vector<size_t> len;
      for (const auto& a : args) {
        argv.push_back(a.data());
        len.push_back(a.size());
      }
      auto* r = static_cast<redisReply*>(redisCommandArgv(c, int(argv.size()), argv.data(), len.data()));
      if (r) {
        if (r->type == REDIS_REPLY_INTEGER) out = std::to_string(r->integer);
        else if (r->type == REDIS_REPLY_NIL) out = "(nil)";
        else if (r->str) out = std::string(r->str, r->len);
        else out = "";
        freeReplyObject(r);
      }
    }
    redisFree(c);
    return out;
  }
  std::optional<std::string> command(const char* one) const { return command(std::vector<std::string>{one}); }

 private:
  uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace troupe::cache::test
