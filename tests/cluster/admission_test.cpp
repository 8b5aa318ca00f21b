// Admission control with real processes (`troupe up`, one worker running at most 2 sequences, at
// most 4 requests queued): a burst far beyond the bounds gets 429 with Retry-After at once for the
// excess, while every admitted request completes; the router's memory stays bounded.
#include <gtest/gtest.h>

#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

struct answered {
  int status = 0;
  std::string headers, body;
  double seconds = 0;  // request sent -> response head read
};

TEST(admission, beyond_the_queue_bound_requests_get_429_with_retry_after_at_once) {
  const std::string model = cluster_model("admission-model", 1024, 2);
  local_cluster cluster(model, 1, {"--max-running", "2", "--max-queued-requests", "4"});
  ASSERT_NE(cluster.port(), 0);
  constexpr int burst = 48;  // 8x the 2 running + 4 queued the cluster takes at once
  std::vector<answered> out(burst);
  std::vector<std::thread> threads;
  for (int i = 0; i < burst; ++i)
    threads.emplace_back([&out, &cluster, i]() {
      http_connection conn(cluster.port(), 120);
      const std::string body = completion_body("Burst " + std::to_string(i), 200, true, ",\"ignore_eos\":true",
                                               "admission-model");
      const auto sent = clock_type::now();
      conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: " +
                    std::to_string(body.size()) + "\r\n\r\n" + body);
      answered& a = out[size_t(i)];
      a.status = conn.read_head();
      a.seconds = std::chrono::duration<double>(clock_type::now() - sent).count();
      a.headers = conn.head();
      a.body = conn.read_body_until([](const std::string&) { return false; });
    });
  for (auto& t : threads) t.join();
  int admitted = 0, refused = 0;
  double slowest_refusal = 0;
  for (const auto& a : out) {
    if (a.status == 200) {
      ++admitted;
      const streamed s = parse_stream(a.status, a.body);
      EXPECT_EQ(s.error, "");
      EXPECT_TRUE(s.done);
      EXPECT_EQ(s.finish, "length");
    } else {
      ASSERT_EQ(a.status, 429) << a.headers << a.body;
      ++refused;
      slowest_refusal = std::max(slowest_refusal, a.seconds);
      std::string h = a.headers;
      std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return char(std::tolower(c)); });
      EXPECT_NE(h.find("retry-after: "), std::string::npos) << a.headers;
      EXPECT_NE(a.body.find("the server is at capacity"), std::string::npos) << a.body;
      EXPECT_NE(a.body.find("requests are queued (limit 4)"), std::string::npos) << a.body;
    }
  }
  std::printf("burst of %d: %d admitted, %d refused with 429, slowest refusal %.3f s\n", burst, admitted, refused,
              slowest_refusal);
  EXPECT_GE(admitted, 4);
  EXPECT_GE(refused, burst / 2) << "the queue bound did not hold";
  // Refusals do not wait behind the queue: they come before any admitted request could finish.
  EXPECT_LT(slowest_refusal, 1.0);
  // The cluster serves on once the burst is over.
  auto after = stream_completion(cluster.port(), completion_body("After", 4, true, {}, "admission-model"));
  EXPECT_EQ(after.status, 200) << after.error;
}

}  // namespace
}  // namespace troupe::test
