// Drain on SIGTERM, with real processes on loopback (`troupe up`, its worker processes, mutual TLS
// as by default): a worker told to stop leaves its router and lets its streams finish; `up` told to
// stop refuses new requests with 503 + Retry-After, lets every open stream finish, and exits 0; at
// the drain deadline the streams still open end with an error event and [DONE], never a cut body.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

const std::string& drain_model() {
  static const std::string dir = test::cluster_model("drain-model", 2048, 2);
  return dir;
}

// A greedy stream of `tokens` tokens (eos ignored) for the drain model, with usage.
std::function<std::string(int)> long_streams(int tokens) {
  return [tokens](int i) {
    return completion_body("Stream number " + std::to_string(i), tokens, true,
                           ",\"ignore_eos\":true,\"stream_options\":{\"include_usage\":true}", "drain-model");
  };
}

// True once `pid` has exited (a zombie of its parent counts).
bool exited(pid_t pid, std::chrono::milliseconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  do {
    const std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
    const auto paren = stat.rfind(')');
    if (stat.empty() || (paren != std::string::npos && paren + 2 < stat.size() && stat[paren + 2] == 'Z')) return true;
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return false;
}

TEST(drain, sigterm_to_a_worker_lets_its_streams_finish_then_it_leaves) {
  local_cluster cluster(drain_model(), 1);
  ASSERT_NE(cluster.port(), 0);
  const auto pids = cluster.worker_pids();
  ASSERT_EQ(pids.size(), 1u);
  stream_load load(cluster.port(), 8, long_streams(800));
  ASSERT_TRUE(load.started_at_least(8));
  const auto signalled = std::chrono::steady_clock::now();
  ::kill(pids[0], SIGTERM);
  // The group is draining: nothing new is routed to it (it is the only one).
  const auto until = std::chrono::steady_clock::now() + 5s;
  streamed refused;
  do {
    refused = stream_completion(cluster.port(), completion_body("New", 4, true, {}, "drain-model"));
  } while (refused.status == 200 && std::chrono::steady_clock::now() < until);
  EXPECT_EQ(refused.status, 503) << refused.error;
  load.join();
  // They were still running when the signal came.
  EXPECT_GT(std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count(), 0.3);
  for (const auto& r : load.results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.error, "");
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.finish, "length");
    EXPECT_EQ(r.completion_tokens, 800);
  }
  EXPECT_TRUE(exited(pids[0], 10s)) << cluster.log();
  EXPECT_TRUE(cluster.log_has("leaving: the router drains it")) << cluster.log();
  EXPECT_TRUE(cluster.log_has("the shard group was drained; this worker stops")) << cluster.log();
  // `up`'s autoscaler keeps its one worker: the drained one is replaced, and not counted as failed.
  const auto back = std::chrono::steady_clock::now() + 20s;
  while (cluster.live_groups() != 1 && std::chrono::steady_clock::now() < back) std::this_thread::sleep_for(50ms);
  EXPECT_EQ(cluster.live_groups(), 1) << cluster.log();
  EXPECT_NE(cluster.log().find("stopped cleanly (drained from outside)"), std::string::npos) << cluster.log();
}

TEST(drain, sigterm_to_up_refuses_new_requests_and_lets_every_open_stream_finish) {
  local_cluster cluster(drain_model(), 2);
  ASSERT_NE(cluster.port(), 0);
  stream_load load(cluster.port(), 8, long_streams(800));
  ASSERT_TRUE(load.started_at_least(8));
  const auto signalled = std::chrono::steady_clock::now();
  ::kill(cluster.pid(), SIGTERM);
  std::this_thread::sleep_for(200ms);
  // Still listening, but taking nothing new: 503 with Retry-After, and /health says draining.
  auto refused = http_request(cluster.port(), "POST", "/v1/completions", completion_body("New", 4, false, {}, "drain-model"));
  EXPECT_EQ(refused.status, 503) << refused.body << refused.error;
  EXPECT_NE(refused.body.find("shutting down"), std::string::npos) << refused.body;
  std::string headers = refused.headers;
  std::transform(headers.begin(), headers.end(), headers.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  EXPECT_NE(headers.find("retry-after: "), std::string::npos) << refused.headers;
  auto health = http_request(cluster.port(), "GET", "/health");
  EXPECT_EQ(health.status, 503);
  EXPECT_NE(health.body.find("\"status\":\"draining\""), std::string::npos) << health.body;
  load.join();
  EXPECT_GT(std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count(), 0.3);
  for (const auto& r : load.results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.error, "");
    EXPECT_TRUE(r.done) << "a stream was cut";
    EXPECT_EQ(r.finish, "length");
    EXPECT_EQ(r.completion_tokens, 800);
  }
  const int status = cluster.wait_exit(20s);
  EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << cluster.log();
}

TEST(drain, at_the_drain_deadline_open_streams_end_with_an_error_event_and_done) {
  local_cluster cluster(drain_model(), 1, {"--drain-timeout", "1"});
  ASSERT_NE(cluster.port(), 0);
  stream_load load(cluster.port(), 4, long_streams(1900));
  ASSERT_TRUE(load.started_at_least(4));
  const auto signalled = std::chrono::steady_clock::now();
  ::kill(cluster.pid(), SIGTERM);
  load.join();
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - signalled).count();
  EXPECT_LT(seconds, 6.0);
  for (const auto& r : load.results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_NE(r.error.find("drain timeout"), std::string::npos) << r.error;
    EXPECT_TRUE(r.done) << "a stream was cut";
  }
  const int status = cluster.wait_exit(20s);
  EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << cluster.log();
}

}  // namespace
}  // namespace troupe::test
