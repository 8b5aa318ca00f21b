// The local launcher with real child processes (a shell standing in for the worker binary): the
// arguments it is given, exits reaped with their status and last error line, stop as SIGTERM then
// SIGKILL after the grace, and the errors before anything runs.
#include "autoscaler/local_launcher.hpp"

#include <gtest/gtest.h>

#include <thread>

namespace troupe::autoscaler {
namespace {

using namespace std::chrono_literals;

// Runs `script` under /bin/sh -c for every worker; $1 is the worker's name, $2 the router.
local_launcher shell(std::string script) {
  return local_launcher(
      [script](const std::string& name, const std::string& router) -> expected<std::vector<std::string>> {
        if (name == "refused") return fail(std::string("no certificate for ").append(name));
        return std::vector<std::string>{"-c", script, "sh", name, router};
      },
      "/bin/sh");
}

std::vector<worker_exit> wait_exits(local_launcher& l, size_t n, std::chrono::milliseconds within = 10s) {
  std::vector<worker_exit> all;
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (all.size() < n && std::chrono::steady_clock::now() < deadline) {
    for (auto& e : l.poll()) all.push_back(std::move(e));
    std::this_thread::sleep_for(10ms);
  }
  return all;
}

TEST(local_launcher, an_exit_is_reaped_with_its_status_and_last_error_line) {
  auto l = shell("echo \"[info] $1 joins $2\" >&2; echo 'error: the model is broken' >&2; echo bye >&2; exit 3");
  l.set_router("127.0.0.1:7070");
  ASSERT_TRUE(l.start("w0"));
  EXPECT_EQ(l.pids().size(), 1u);
  const auto exits = wait_exits(l, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].name, "w0");
  EXPECT_EQ(exits[0].status, 3);
  EXPECT_EQ(exits[0].last_error, "error: the model is broken");
  EXPECT_TRUE(l.pids().empty()) << "reaped: no zombie left";
}

// A line longer than the 4 KiB bound is passed on in pieces; the error kept is cut to the bound.
TEST(local_launcher, a_line_past_the_bound_is_cut) {
  auto l = shell("printf 'error: ' >&2; head -c 9000 /dev/zero | tr '\\0' x >&2; echo >&2; exit 1");
  l.set_router("127.0.0.1:7070");
  ASSERT_TRUE(l.start("long"));
  const auto exits = wait_exits(l, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].status, 1);
  EXPECT_EQ(exits[0].last_error.rfind("error: xxx", 0), 0u) << exits[0].last_error.substr(0, 40);
  EXPECT_LE(exits[0].last_error.size(), 4096u);
}

TEST(local_launcher, stop_is_sigterm_and_then_sigkill_after_the_grace) {
  auto l = shell("trap 'exit 0' TERM; while :; do sleep 0.05; done");
  l.set_router("127.0.0.1:7070");
  ASSERT_TRUE(l.start("polite"));
  std::this_thread::sleep_for(200ms);  // the trap is set
  l.stop("polite", 5s);
  auto exits = wait_exits(l, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].status, 0) << "it stopped on SIGTERM";

  auto stubborn = shell("trap '' TERM; while :; do sleep 0.05; done");
  stubborn.set_router("127.0.0.1:7070");
  ASSERT_TRUE(stubborn.start("stubborn"));
  std::this_thread::sleep_for(200ms);
  const auto stopped = std::chrono::steady_clock::now();
  stubborn.stop("stubborn", 300ms);
  exits = wait_exits(stubborn, 1);
  ASSERT_EQ(exits.size(), 1u);
  EXPECT_EQ(exits[0].status, 128 + SIGKILL);
  EXPECT_GE(std::chrono::steady_clock::now() - stopped, 300ms);
}

TEST(local_launcher, errors_before_anything_runs_name_the_worker) {
  auto l = shell("exit 0");
  auto early = l.start("w0");
  ASSERT_FALSE(early);
  EXPECT_NE(early.message().find("no router to join yet"), std::string::npos);
  l.set_router("127.0.0.1:7070");
  auto refused = l.start("refused");
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.message(), "no certificate for refused");
  auto sleeper = shell("sleep 5");
  sleeper.set_router("127.0.0.1:7070");
  ASSERT_TRUE(sleeper.start("w1"));
  auto twice = sleeper.start("w1");
  ASSERT_FALSE(twice);
  EXPECT_NE(twice.message().find("worker w1 runs already"), std::string::npos);
  sleeper.stop_all(1s);
}

TEST(local_launcher, stop_all_ends_every_worker) {
  auto l = shell("trap '' TERM; while :; do sleep 0.05; done");
  l.set_router("127.0.0.1:7070");
  for (const char* name : {"w0", "w1", "w2"}) ASSERT_TRUE(l.start(name));
  const auto pids = l.pids();
  ASSERT_EQ(pids.size(), 3u);
  l.stop_all(200ms);
  EXPECT_TRUE(l.pids().empty());
  for (const auto& [name, pid] : pids) EXPECT_NE(::kill(pid, 0), 0) << name << " still exists";
}

}  // namespace
}  // namespace troupe::autoscaler
