// The autoscaler of `troupe up`, with real processes on loopback: workers that cannot start make
// `up` exit non-zero with their error (requests meanwhile get 503, nothing hangs); the target policy
// adds a group under load and drains one when the load is gone, with every request answered; bad
// scaling flags are refused by name. (A killed worker's replacement: cluster_test.cpp.)
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

const std::string& scale_model() {
  static const std::string dir = test::cluster_model("scale-model", 2048, 2);
  return dir;
}

double gauge_value(const std::string& metrics, const std::string& name) {
  const auto at = metrics.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::atof(metrics.c_str() + at + name.size() + 2);
}

TEST(autoscaler, up_exits_non_zero_with_the_workers_error_when_none_can_start) {
  const std::string dir = process_tmp() + "/autoscaler-fail";
  std::filesystem::create_directories(dir);
  const std::string log = dir + "/up.log";
  const auto started = clock_type::now();
  const pid_t pid = spawn_troupe({"up", "--model", scale_model(), "--workers", "2", "--threads", "1", "--kv-memory",
                                  "1000", "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--port-file",
                                  dir + "/ports"},
                                 log);
  // Meanwhile the router answers, with 503: no group serves.
  uint16_t port = 0;
  while (port == 0 && clock_type::now() - started < 10s) {
    const std::string ports = read_file(dir + "/ports");
    if (auto at = ports.find("http="); at != std::string::npos) port = uint16_t(std::atoi(ports.c_str() + at + 5));
    std::this_thread::sleep_for(20ms);
  }
  ASSERT_NE(port, 0) << read_file(log);
  auto r = http_request(port, "POST", "/v1/completions", completion_body("Anyone?", 4, false, {}, "scale-model"));
  EXPECT_EQ(r.status, 503) << r.body;
  int status = 0;
  pid_t done = 0;
  while ((done = ::waitpid(pid, &status, WNOHANG)) == 0 && clock_type::now() - started < 30s)
    std::this_thread::sleep_for(50ms);
  if (done == 0) stop_process(pid, 5s, SIGKILL);
  ASSERT_EQ(done, pid) << "up still ran 30 s after its workers kept failing\n" << read_file(log);
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  const std::string out = read_file(log);
  EXPECT_NE(out.find("error: no worker could start for 'scale-model'"), std::string::npos) << out;
  EXPECT_NE(out.find("--kv-memory of 1000 bytes holds 0 blocks"), std::string::npos) << out;
  EXPECT_NE(out.find("worker failures within 60 s"), std::string::npos) << out;
}

// A worker that keeps dying after it served: replaced each time, until five deaths within a minute
// mark the model failed; then no more starts, and /health says why (up keeps serving its API).
TEST(autoscaler, a_crash_looping_worker_marks_the_model_failed_in_health) {
  local_cluster cluster(scale_model(), 1);
  ASSERT_NE(cluster.port(), 0);
  for (int kill = 0; kill < 5; ++kill) {
    const auto until = clock_type::now() + 20s;
    std::vector<pid_t> pids;
    while ((pids = cluster.child_pids()).empty() || cluster.live_groups() != 1) {
      ASSERT_LT(clock_type::now(), until) << "no replacement after kill " << kill << "\n" << cluster.log();
      std::this_thread::sleep_for(20ms);
    }
    ::kill(pids[0], SIGKILL);
    while (cluster.live_groups() != 0 && clock_type::now() < until) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(cluster.log_has("failed: 5 worker failures within 60 s")) << cluster.log();
  auto h = http_request(cluster.port(), "GET", "/health");
  EXPECT_EQ(h.status, 503) << h.body;
  EXPECT_NE(h.body.find("\"status\":\"model failed\""), std::string::npos) << h.body;
  EXPECT_NE(h.body.find("\"model_failed\":\"5 worker failures within 60 s"), std::string::npos) << h.body;
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(cluster.child_pids().empty()) << "no more starts once failed";
  EXPECT_EQ(gauge_value(cluster.metrics(), "troupe_autoscaler_model_failed"), 1);
}

// Scale from zero: no worker until a request comes; /health says idle (200). A burst of 10 while
// none serves: 4 (--hold-max) are held and served once the worker is up, the other 6 get 503 with
// Retry-After at once; nothing hangs.
TEST(autoscaler, from_zero_requests_are_held_while_a_worker_starts_and_a_burst_past_the_bound_gets_503) {
  local_cluster cluster(0, {"up", "--model", scale_model(), "--min-workers", "0", "--max-workers", "1", "--hold-max", "4",
                            "--hold-timeout", "60", "--scale-down-window", "600", "--http", "127.0.0.1:0", "--listen",
                            "127.0.0.1:0", "--threads", "1", "--kv-memory", std::to_string(64 << 20)});
  ASSERT_NE(cluster.port(), 0);
  std::this_thread::sleep_for(1s);
  EXPECT_TRUE(cluster.child_pids().empty()) << "no worker before any request";
  auto h = http_request(cluster.port(), "GET", "/health");
  EXPECT_EQ(h.status, 200) << h.body;
  EXPECT_NE(h.body.find("\"status\":\"idle\""), std::string::npos) << h.body;
  std::vector<http_response> replies(10);
  std::vector<double> took(10);
  std::vector<std::thread> clients;
  for (int i = 0; i < 10; ++i)
    clients.emplace_back([&replies, &took, &cluster, i]() {
      const auto sent = clock_type::now();
      replies[size_t(i)] = http_request(cluster.port(), "POST", "/v1/completions",
                                        completion_body("Wake up " + std::to_string(i), 8, false, {}, "scale-model"));
      took[size_t(i)] = std::chrono::duration<double>(clock_type::now() - sent).count();
    });
  for (auto& t : clients) t.join();
  int served = 0, refused = 0;
  for (size_t i = 0; i < replies.size(); ++i) {
    const http_response& r = replies[i];
    if (r.status == 200) {
      ++served;
      EXPECT_NE(r.body.find("\"finish_reason\":\"length\""), std::string::npos) << r.body;
    } else {
      ++refused;
      EXPECT_EQ(r.status, 503) << r.body;
      EXPECT_NE(r.body.find("requests already wait for one (--hold-max)"), std::string::npos) << r.body;
      EXPECT_NE(r.headers.find("Retry-After: "), std::string::npos) << r.headers;
      EXPECT_LT(took[i], 2.0) << "refused at once, not after a wait";
    }
  }
  EXPECT_EQ(served, 4);
  EXPECT_EQ(refused, 6);
  EXPECT_EQ(cluster.live_groups(), 1);
  EXPECT_TRUE(cluster.log_has("scale from zero: ")) << cluster.log();
  EXPECT_TRUE(cluster.log_has("serves, ")) << cluster.log();
}

// From zero with a worker that cannot start: the held request gets 503 at its hold timeout, with
// Retry-After, naming the flag; it does not hang. (Five such failures in a minute would mark the
// model failed and end `up`, as above; one is a failed start, retried on the next demand.)
TEST(autoscaler, a_request_held_past_the_hold_timeout_gets_503) {
  local_cluster cluster(0, {"up", "--model", scale_model(), "--min-workers", "0", "--max-workers", "1", "--hold-timeout",
                            "2", "--http", "127.0.0.1:0", "--listen", "127.0.0.1:0", "--threads", "1", "--kv-memory",
                            "1000"});
  ASSERT_NE(cluster.port(), 0);
  const auto sent = clock_type::now();
  auto r = http_request(cluster.port(), "POST", "/v1/completions", completion_body("Hello?", 4, false, {}, "scale-model"));
  const double waited = std::chrono::duration<double>(clock_type::now() - sent).count();
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_NE(r.body.find("no shard group started within the hold time of 2 s (--hold-timeout)"), std::string::npos)
      << r.body;
  EXPECT_NE(r.headers.find("Retry-After: "), std::string::npos) << r.headers;
  EXPECT_GE(waited, 1.9);
  EXPECT_LT(waited, 10.0);
  // The worker's failure is in the log; with nothing held any more, nothing more is started.
  EXPECT_TRUE(cluster.log_has("--kv-memory of 1000 bytes holds 0 blocks")) << cluster.log();
  EXPECT_TRUE(cluster.log_has("waited 2 s and no shard group started")) << cluster.log();
}

TEST(autoscaler, bad_scaling_flags_are_refused_by_name) {
  const std::string up = std::string(TROUPE_BIN) + " up --model " + scale_model() + " --http 127.0.0.1:0 ";
  EXPECT_NE(run_capture(up + "--scale-policy guess 2>&1").find("--scale-policy 'guess': give fixed or target"),
            std::string::npos);
  EXPECT_NE(run_capture(up + "--min-workers 1 --max-workers 3 --scale-signal vibes 2>&1").find("--scale-signal 'vibes'"),
            std::string::npos);
  EXPECT_NE(run_capture(up + "--min-workers 3 --max-workers 2 2>&1").find("--min-workers 3 / --max-workers 2"),
            std::string::npos);
  EXPECT_NE(run_capture(up + "--min-workers 0 --max-workers 2 --hold-max 0 2>&1").find("--hold-max in [1, 100000]"),
            std::string::npos);
  EXPECT_NE(run_capture(up + "--scale-mode sometimes 2>&1").find("--scale-mode 'sometimes'"), std::string::npos);
  EXPECT_NE(run_capture(up + "--scale-policy fixed --min-workers 1 --max-workers 2 2>&1").find("--min-workers = --max-workers"),
            std::string::npos);
}

// One group to start with; rounds of 8 long streams (each ~1500 outstanding tokens against a target
// of 1000 per group) raise it to two; once they end, a trickle of short requests (far under target) runs
// while the second group is drained: every request of both phases is answered.
TEST(autoscaler, the_target_policy_adds_a_group_under_load_and_drains_one_after_with_no_request_failed) {
  local_cluster cluster(scale_model(), 1,
                        {"--min-workers", "1", "--max-workers", "2", "--scale-policy", "target", "--scale-signal",
                         "outstanding", "--scale-target", "1000", "--scale-up-window", "1", "--scale-down-window", "3"});
  ASSERT_NE(cluster.port(), 0);
  // Rounds of 8 long streams until the second group serves (each round lasts about a second).
  // Meanwhile the groups' reported queue delay (arrival to first token, p90) is sampled.
  std::atomic<bool> loading{true};
  double most_delay = 0;
  std::thread sampler([&cluster, &loading, &most_delay]() {
    while (loading.load()) {
      for (const auto& [group, v] : group_gauge(cluster.metrics(), "troupe_group_queue_delay_p90_seconds"))
        most_delay = std::max(most_delay, v);
      std::this_thread::sleep_for(200ms);
    }
  });
  const auto until_up = clock_type::now() + 40s;
  int rounds = 0;
  while (cluster.live_groups() < 2 && clock_type::now() < until_up) {
    stream_load load(cluster.port(), 8, [](int i) {
      return completion_body("Busy number " + std::to_string(i), 1500, true,
                             ",\"ignore_eos\":true,\"stream_options\":{\"include_usage\":true}", "scale-model");
    });
    load.join();
    ++rounds;
    for (const auto& r : load.results) {
      EXPECT_EQ(r.status, 200);
      EXPECT_EQ(r.error, "");
      EXPECT_EQ(r.completion_tokens, 1500);
    }
  }
  EXPECT_EQ(cluster.live_groups(), 2) << "after " << rounds << " rounds of load\n" << cluster.log();
  loading = false;
  sampler.join();
  EXPECT_GT(most_delay, 0.0) << "a group reported the delay to its requests' first tokens";
  EXPECT_LT(most_delay, 30.0);
  const std::string log = cluster.log();
  EXPECT_NE(log.find("1 -> 2 replicas wanted: outstanding"), std::string::npos) << log;
  // The load is gone: one group is drained while short requests keep coming.
  int sent = 0, answered = 0;
  const auto until = clock_type::now() + 30s;
  while (clock_type::now() < until) {
    auto r = http_request(cluster.port(), "POST", "/v1/completions", completion_body("Quiet", 4, false, {}, "scale-model"));
    ++sent;
    answered += r.status == 200;
    EXPECT_EQ(r.status, 200) << r.body;
    if (cluster.live_groups() == 1 && cluster.log().find("drained and stopped") != std::string::npos) break;
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(answered, sent);
  EXPECT_GT(sent, 5);
  EXPECT_EQ(cluster.live_groups(), 1) << cluster.log();
  const std::string after = cluster.log();
  EXPECT_NE(after.find("2 -> 1 replicas wanted"), std::string::npos) << after;
  EXPECT_NE(after.find("the 1 left would see"), std::string::npos) << after;
  EXPECT_NE(after.find("drained and stopped"), std::string::npos) << after;
  const std::string metrics = cluster.metrics();
  EXPECT_EQ(gauge_value(metrics, "troupe_autoscaler_desired_replicas"), 1) << metrics;
  EXPECT_NE(metrics.find("troupe_autoscaler_decisions_total{direction=\"down\",reason=\"policy\"} 1"), std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("troupe_autoscaler_decisions_total{direction=\"up\",reason=\"policy\"} 1"), std::string::npos)
      << metrics;
}

}  // namespace
}  // namespace troupe::test
