// The HTTP listener's bounds against a real router process, tried as a slowloris or a flood would:
// headers that never finish and bodies that trickle are cut at their timeouts (a trickled body
// gets 408), a kept-alive connection is closed when idle, and over --http-max-connections a new
// connection gets 503 and is closed while /health keeps answering.
#include <gtest/gtest.h>

#include <thread>

#include "tests/cluster/cluster_fixture.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

local_cluster limited_router(const std::string& max_connections) {
  return local_cluster(0, {"node", "--roles", "router", "--model", cluster_model("limits-model", 256, 2), "--listen",
                           "127.0.0.1:0", "--http", "127.0.0.1:0", "--no-cache", "--cluster-certs", node_certs(),
                           "--http-header-timeout", "1", "--http-body-timeout", "1", "--http-idle-timeout", "1",
                           "--http-max-connections", max_connections});
}

TEST(http_limits, unfinished_headers_and_trickled_bodies_are_cut_at_their_timeouts) {
  local_cluster router = limited_router("64");
  ASSERT_NE(router.port(), 0);
  // Headers that never end (slowloris).
  http_connection headers(router.port(), 1);
  ASSERT_TRUE(headers.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // A body declared as 1000 bytes of which 10 arrive.
  http_connection body(router.port(), 1);
  ASSERT_TRUE(body.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{\"model\":"));
  // A kept-alive connection after one answered request.
  http_connection idle(router.port(), 1);
  ASSERT_TRUE(idle.send_raw("GET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_EQ(idle.read_head(), 200);

  const double header_cut = seconds_until_closed(headers.fd(), 10s);
  EXPECT_GT(header_cut, 0) << "a connection with unfinished headers stayed open";
  EXPECT_LT(header_cut, 3.0);
  std::string answer;
  const double body_cut = seconds_until_closed(body.fd(), 10s, &answer);
  EXPECT_GT(body_cut, 0) << "a trickled body kept its connection open";
  EXPECT_NE(answer.find("HTTP/1.1 408"), std::string::npos) << answer;
  EXPECT_NE(answer.find("did not arrive within 1"), std::string::npos) << answer;
  const double idle_cut = seconds_until_closed(idle.fd(), 10s);
  EXPECT_GT(idle_cut, 0) << "an idle kept-alive connection stayed open";
  EXPECT_LT(idle_cut, 3.0);
  // The server serves on.
  EXPECT_EQ(http_request(router.port(), "GET", "/v1/models").status, 200);
}

TEST(http_limits, over_the_connection_bound_a_new_connection_gets_503_and_health_recovers) {
  local_cluster router = limited_router("8");
  ASSERT_NE(router.port(), 0);
  std::vector<std::unique_ptr<http_connection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<http_connection>(router.port(), 5));
    ASSERT_TRUE(held.back()->ok());
  }
  std::this_thread::sleep_for(100ms);  // the server has accepted them
  auto refused = http_request(router.port(), "GET", "/health");
  EXPECT_EQ(refused.status, 503) << refused.body << refused.error;
  EXPECT_NE(refused.body.find("too many open connections"), std::string::npos) << refused.body;
  held.clear();
  // Once they are closed, connections are taken again.
  const auto deadline = clock_type::now() + 5s;
  int status = 0;
  do {
    std::this_thread::sleep_for(50ms);
    status = http_request(router.port(), "GET", "/v1/models").status;
  } while (status != 200 && clock_type::now() < deadline);
  EXPECT_EQ(status, 200);
}

}  // namespace
}  // namespace troupe::test
