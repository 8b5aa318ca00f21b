// The Cap'n Proto listener's bounds against a real router process, tried as an attacker would with
// raw sockets: messages that declare 16 MiB before any authentication are cut off before they are
// allocated (the router's memory stays flat), a client that never authenticates is closed at the
// auth timeout, and beyond --rpc-max-connections a new connection is closed at once; a real client
// is served throughout.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <thread>

#include "client/client.hpp"
#include "tests/cluster/cluster_fixture.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

int connect_to(uint16_t port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{0, 200000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  EXPECT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  return fd;
}

// A real client's greedy completion: its text, or the error.
std::string served(uint16_t port) {
  auto c = client::client::connect("127.0.0.1", port, "");
  if (!c) return "error: " + c.message();
  client::request r;
  r.model = "rpc-limits-model";
  r.prompt = "Hello";
  r.sampling.temperature = 0;
  r.sampling.max_tokens = 4;
  auto res = c->generate(r, [](const client::chunk&) { return true; });
  if (!res) return "error: " + res.message();
  return "ok";
}

TEST(rpc_limits, unauthenticated_clients_are_bounded_in_bytes_time_and_number) {
  const std::string model = cluster_model("rpc-limits-model", 256, 2);
  local_cluster cluster(model, 1,
                        {"--rpc", "127.0.0.1:0", "--rpc-auth-timeout", "1", "--rpc-max-connections", "40"});
  ASSERT_NE(cluster.rpc_port(), 0);
  EXPECT_EQ(served(cluster.rpc_port()), "ok");
  std::this_thread::sleep_for(200ms);
  const long before = rss_kb(cluster.pid());

  // 32 connections, each declaring a 16 MiB one-segment message and sending 1 MiB of it.
  std::vector<int> bombs;
  std::string payload(1 << 20, 'x');
  for (int i = 0; i < 32; ++i) {
    const int fd = connect_to(cluster.rpc_port());
    uint32_t header[2] = {0, (16u << 20) / 8};  // one segment of 2 Mi words
    (void)::send(fd, header, sizeof header, MSG_NOSIGNAL);
    (void)::send(fd, payload.data(), payload.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    bombs.push_back(fd);
  }
  std::this_thread::sleep_for(500ms);
  const long after = rss_kb(cluster.pid());
  EXPECT_LT(after - before, 16 * 1024) << "router RSS went from " << before << " kB to " << after << " kB";
  for (int fd : bombs) {
    EXPECT_GE(seconds_until_closed(fd, 3s), 0) << "a connection that declared 16 MiB stayed open";
    ::close(fd);
  }

  // A client that connects and says nothing is closed at the auth timeout (1 s).
  const int idle = connect_to(cluster.rpc_port());
  const double idle_cut = seconds_until_closed(idle, 5s);
  ::close(idle);
  EXPECT_GT(idle_cut, 0.5);
  EXPECT_LT(idle_cut, 3.0);

  // 40 open connections at most: the 41st is closed at once.
  std::vector<int> held;
  for (int i = 0; i < 40; ++i) held.push_back(connect_to(cluster.rpc_port()));
  std::this_thread::sleep_for(200ms);
  const int extra = connect_to(cluster.rpc_port());
  const double extra_cut = seconds_until_closed(extra, 2s);
  ::close(extra);
  EXPECT_GE(extra_cut, 0) << "the 41st connection stayed open";
  EXPECT_LT(extra_cut, 0.5);
  for (int fd : held) ::close(fd);
  std::this_thread::sleep_for(300ms);
  // A real client is served once they are gone.
  EXPECT_EQ(served(cluster.rpc_port()), "ok");
}

}  // namespace
}  // namespace troupe::test
