// A request's deadline (--request-timeout) with real processes: a worker that hangs (SIGSTOP) while
// it streams a request, and one that hangs before it answers another; at the deadline the router
// ends each with a timeout (an error event and [DONE] on the stream, HTTP 504 otherwise), aborts it
// at the group, and the worker serves on once it runs again.
#include <gtest/gtest.h>

#include <signal.h>

#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

TEST(deadline, a_request_past_its_deadline_ends_with_a_timeout_and_the_cluster_serves_on) {
  const std::string model = cluster_model("deadline-model", 1024, 2);
  local_cluster cluster(model, 1, {"--request-timeout", "1.5"});
  ASSERT_NE(cluster.port(), 0);
  const auto pids = cluster.worker_pids();
  ASSERT_EQ(pids.size(), 1u);
  // A stream that has started: the worker is stopped under it.
  http_connection conn(cluster.port(), 30);
  const std::string body = completion_body("Deadline", 900, true, ",\"ignore_eos\":true", "deadline-model");
  conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body);
  ASSERT_EQ(conn.read_head(), 200);
  const auto sent = clock_type::now();
  conn.read_body_until([](const std::string& b) { return b.find("\"text\":\"") != std::string::npos; });
  ::kill(pids[0], SIGSTOP);
  // A second request, not streamed, reaches the stopped worker (or waits for it).
  http_response plain;
  std::thread second([&plain, &cluster]() {
    plain = http_request(cluster.port(), "POST", "/v1/completions",
                         completion_body("Second", 8, false, {}, "deadline-model"));
  });
  const std::string rest = conn.read_body_until([](const std::string&) { return false; });
  const double seconds = std::chrono::duration<double>(clock_type::now() - sent).count();
  second.join();
  ::kill(pids[0], SIGCONT);
  const streamed s = parse_stream(200, rest);
  EXPECT_TRUE(s.done) << rest;
  EXPECT_NE(s.error.find("did not finish within its deadline of 1.5 s"), std::string::npos) << rest;
  EXPECT_FALSE(s.text.empty()) << "the tokens before the hang reached the client";
  EXPECT_LT(seconds, 2.9) << "the stream ended after the CAF connection timeout, not at its deadline";
  EXPECT_EQ(plain.status, 504) << plain.body;
  EXPECT_NE(plain.body.find("\"code\":\"timeout\""), std::string::npos) << plain.body;
  // The worker runs again: both requests were aborted there, and it serves the next one whole.
  auto after = stream_completion(cluster.port(), completion_body("After", 8, true, {}, "deadline-model"));
  EXPECT_EQ(after.status, 200) << after.error;
  EXPECT_EQ(after.error, "");
  EXPECT_TRUE(after.done);
  EXPECT_NE(cluster.log().find("passed its deadline of 1500 ms"), std::string::npos) << cluster.log();
}

}  // namespace
}  // namespace troupe::test
