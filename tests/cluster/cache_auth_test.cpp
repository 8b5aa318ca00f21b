// The router's response cache and API keys, end to end over HTTP: hits never reach a worker, the
// bypasses work, two routers share a real Redis server (and survive its death), and keys are
// enforced on every /v1 route.
#include <gtest/gtest.h>
#include <simdjson.h>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/redis_server.hpp"

namespace troupe::test {
namespace {

const std::string& model_dir() {
  static const std::string dir = cluster_model("cache-model", 1024, 2);
  return dir;
}

std::string body(const std::string& prompt, const std::string& extra = "") {
  return "{\"model\":\"cache-model\",\"prompt\":\"" + prompt + "\",\"max_tokens\":12,\"temperature\":0" + extra + "}";
}

std::string text_of(const http_response& r) {
  simdjson::dom::parser parser;
  auto doc = parser.parse(r.body);
  std::string_view t;
  if (doc.error() || doc["choices"].at(0)["text"].get(t)) return "<no text: " + r.body + ">";
  return std::string(t);
}

std::string streamed_text(const http_response& r) {
  std::string text;
  simdjson::dom::parser parser;
  for (const auto& ev : sse_events(r.body)) {
    auto doc = parser.parse(ev);
    std::string_view t;
    if (!doc.error() && !doc["choices"].at(0)["text"].get(t)) text += t;
  }
  return text;
}

// Sum over groups of a per-group gauge (routed requests), once the router's snapshot (refreshed
// with each load report, every second) has caught up.
double routed(const local_cluster& c) {
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  double n = 0;
  for (const auto& [g, v] : group_gauge(c.metrics(), "troupe_group_requests_routed")) n += v;
  return n;
}

double metric(const std::string& metrics, const std::string& name) {
  const std::regex re("\\n" + name + " ([-0-9.e+]+)");
  std::smatch m;
  return std::regex_search(metrics, m, re) ? std::stod(m[1]) : -1;
}

TEST(cache, a_hit_never_reaches_a_worker_and_the_bypasses_do) {
  local_cluster cluster(model_dir(), 1);
  ASSERT_NE(cluster.port(), 0);
  const uint16_t port = cluster.port();
  auto first = http_request(port, "POST", "/v1/completions", body("The cache"));
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(routed(cluster), 1);
  // The same request again, streamed: a hit, the same text, no worker involved.
  auto again = http_request(port, "POST", "/v1/completions", body("The cache", ",\"stream\":true"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(streamed_text(again), text_of(first));
  EXPECT_NE(again.body.find("data: [DONE]"), std::string::npos);
  auto hit = http_request(port, "POST", "/v1/completions", body("The cache"));
  EXPECT_EQ(text_of(hit), text_of(first));
  EXPECT_EQ(routed(cluster), 1) << "a cache hit reached a worker";
  const auto m = cluster.metrics();
  EXPECT_EQ(metric(m, "troupe_cache_hits_total"), 2) << m;
  // Bypasses: "cache": false, and Cache-Control: no-cache.
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", body("The cache", ",\"cache\":false")).status, 200);
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", body("The cache"), "Cache-Control: no-cache\r\n").status,
            200);
  EXPECT_EQ(routed(cluster), 3);
  // Sampled without a seed: never cached. With a seed: cached.
  const std::string sampled = "{\"model\":\"cache-model\",\"prompt\":\"Dice\",\"max_tokens\":8,\"temperature\":1";
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", sampled + "}").status, 200);
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", sampled + "}").status, 200);
  EXPECT_EQ(routed(cluster), 5);
  auto s1 = http_request(port, "POST", "/v1/completions", sampled + ",\"seed\":7}");
  auto s2 = http_request(port, "POST", "/v1/completions", sampled + ",\"seed\":7}");
  EXPECT_EQ(text_of(s1), text_of(s2));
  EXPECT_EQ(routed(cluster), 6);
  // Another parameter is another key.
  EXPECT_EQ(http_request(port, "POST", "/v1/completions", body("The cache", ",\"top_k\":5")).status, 200);
  EXPECT_EQ(routed(cluster), 7);
}

TEST(cache, two_routers_share_redis_and_survive_its_death) {
  cache::test::redis_server redis;
  ASSERT_TRUE(redis.start()) << "redis-server did not start";
  const std::string addr = redis.address();
  local_cluster a(model_dir(), 1, {"--cache-redis", addr});
  local_cluster b(model_dir(), 1, {"--cache-redis", addr});
  ASSERT_NE(a.port(), 0);
  ASSERT_NE(b.port(), 0);
  auto on_a = http_request(a.port(), "POST", "/v1/completions", body("Shared between routers"));
  ASSERT_EQ(on_a.status, 200) << on_a.body;
  // The store is asynchronous (the client has its answer before router a's cache has written it):
  // wait until a's cache holds the entry, which it writes to Redis in the same step.
  for (int i = 0; i < 100 && metric(a.metrics(), "troupe_cache_entries") < 1; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  ASSERT_GE(metric(a.metrics(), "troupe_cache_entries"), 1);
  // Router b's first request is a hit from Redis: its worker never sees it.
  auto on_b = http_request(b.port(), "POST", "/v1/completions", body("Shared between routers"));
  ASSERT_EQ(on_b.status, 200) << on_b.body;
  EXPECT_EQ(text_of(on_b), text_of(on_a));
  EXPECT_EQ(routed(b), 0) << "router b sent the request to its worker instead of hitting Redis";
  // Redis dies: both routers keep serving from memory, and new requests go to the workers.
  redis.kill_now();
  for (auto* c : {&a, &b}) {
    auto r = http_request(c->port(), "POST", "/v1/completions", body("After Redis died"));
    EXPECT_EQ(r.status, 200) << r.body;
    auto again = http_request(c->port(), "POST", "/v1/completions", body("After Redis died"));
    EXPECT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(text_of(again), text_of(r));
  }
  EXPECT_EQ(metric(a.metrics(), "troupe_cache_redis_connected"), 0);
}

TEST(cache, a_cache_node_of_its_own_serves_the_router) {
  // `troupe node --roles cache`: the cache actor alone, published on its cluster port.
  const std::string dir = process_tmp() + "/cache-node";
  std::filesystem::create_directories(dir);
  const pid_t cache_pid = spawn_troupe({"node", "--roles", "cache", "--listen", "127.0.0.1:0", "--port-file",
                                        dir + "/ports", "--cache-max-bytes", std::to_string(1 << 20), "--cluster-certs",
                                        node_certs("cache")},
                                       dir + "/cache.log");
  uint16_t cache_port = 0;
  for (int i = 0; i < 200 && cache_port == 0; ++i) {
    const std::string ports = read_file(dir + "/ports");
    if (auto at = ports.find("cluster="); at != std::string::npos) cache_port = uint16_t(std::atoi(ports.c_str() + at + 8));
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  ASSERT_NE(cache_port, 0) << read_file(dir + "/cache.log");
  {
    local_cluster cluster(model_dir(), 1,
                          {"--cache-node", "127.0.0.1:" + std::to_string(cache_port), "--cluster-certs", node_certs()});
    ASSERT_NE(cluster.port(), 0);
    auto first = http_request(cluster.port(), "POST", "/v1/completions", body("Remote cache"));
    ASSERT_EQ(first.status, 200) << first.body;
    auto again = http_request(cluster.port(), "POST", "/v1/completions", body("Remote cache"));
    EXPECT_EQ(text_of(again), text_of(first));
    EXPECT_EQ(routed(cluster), 1) << "the second request was not answered by the cache node";
  }
  const int status = stop_process(cache_pid, std::chrono::seconds(10));
  EXPECT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0) << read_file(dir + "/cache.log");
}

TEST(auth, api_keys_guard_every_v1_route) {
  local_cluster cluster(model_dir(), 1, {"--api-key", "secret-one", "--api-key", "secret-two"});
  ASSERT_NE(cluster.port(), 0);
  const uint16_t port = cluster.port();
  auto none = http_request(port, "POST", "/v1/completions", body("Let me in"));
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.body.find("\"code\":\"invalid_api_key\""), std::string::npos) << none.body;
  EXPECT_NE(none.body.find("missing API key"), std::string::npos) << none.body;
  auto wrong = http_request(port, "POST", "/v1/completions", body("Let me in"), "Authorization: Bearer secret-on\r\n");
  EXPECT_EQ(wrong.status, 401);
  EXPECT_NE(wrong.body.find("incorrect API key"), std::string::npos) << wrong.body;
  EXPECT_EQ(wrong.body.find("secret-on"), std::string::npos) << "the key was echoed";
  EXPECT_EQ(http_request(port, "GET", "/v1/models").status, 401);
  EXPECT_EQ(http_request(port, "GET", "/v1/models", "", "Authorization: Bearer secret-two\r\n").status, 200);
  auto ok = http_request(port, "POST", "/v1/completions", body("Let me in"), "Authorization: Bearer secret-one\r\n");
  EXPECT_EQ(ok.status, 200) << ok.body;
  // Health and metrics stay open without --protect-metrics; no key appears in the log.
  EXPECT_EQ(http_request(port, "GET", "/health").status, 200);
  EXPECT_EQ(http_request(port, "GET", "/metrics").status, 200);
  EXPECT_EQ(cluster.log().find("secret-"), std::string::npos) << cluster.log();
}

TEST(auth, protect_metrics_closes_health_and_metrics_too) {
  const std::string keys = process_tmp() + "/keys";
  {
    std::ofstream f(keys);
    f << "# the operators' keys\nfile-key\n";
  }
  local_cluster cluster(1,
                        {"up", "--model", model_dir(), "--workers", "1", "--http", "127.0.0.1:0", "--listen",
                         "127.0.0.1:0", "--threads", "1", "--api-key-file", keys, "--protect-metrics"},
                        "Authorization: Bearer file-key\r\n");
  ASSERT_NE(cluster.port(), 0);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/metrics").status, 401);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/health").status, 401);
  EXPECT_EQ(http_request(cluster.port(), "GET", "/metrics", "", "Authorization: Bearer file-key\r\n").status, 200);
}

}  // namespace
}  // namespace troupe::test
