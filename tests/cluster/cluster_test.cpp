// The cluster end to end: `troupe up` with real worker processes on loopback, driven over the
// OpenAI-compatible HTTP API: concurrency, equality with `troupe generate`, a worker killed under
// load, a client hanging up mid-stream, and every class of malformed request.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

// The default tiny model, with a shorter context so the context-limit checks are quick to hit.
const std::string& cluster_model() {
  static const std::string dir = test::cluster_model("cluster-model", 2048);
  return dir;
}

TEST(cluster, concurrent_streams_match_generate_and_use_both_groups) {
  local_cluster cluster(cluster_model(), 2);
  ASSERT_NE(cluster.port(), 0);
  const std::vector<std::string> prompts = {"The actors of a distributed system", "Hello there",
                                            "Once upon a time", "A shard group is",
                                            "Tokens stream back", "Routers route", "One two three", "Caches"};
  // The reference: troupe generate, one process per prompt, greedy.
  std::vector<std::string> expected;
  for (const auto& p : prompts) {
    const std::string out = run_capture(std::string(TROUPE_BIN) + " generate --model " + cluster_model() +
                                        " --prompt '" + p + "' --max-tokens 24 --temperature 0 --json 2>&1");
    expected.push_back(json_string_field(out, "text"));
  }
  constexpr int requests = 64;
  std::vector<streamed> results(requests);
  std::vector<std::thread> threads;
  for (int i = 0; i < requests; ++i)
    threads.emplace_back([&, i]() {
      results[size_t(i)] = stream_completion(cluster.port(), completion_body(prompts[size_t(i) % prompts.size()], 24,
                                                                             true, ",\"stream_options\":{\"include_usage\":true}"));
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < requests; ++i) {
    const auto& r = results[size_t(i)];
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.done) << "request " << i << " did not end with [DONE]";
    EXPECT_EQ(r.text, expected[size_t(i) % prompts.size()]) << "request " << i;
    EXPECT_FALSE(r.finish.empty());
    EXPECT_GT(r.completion_tokens, 0);
  }
  const auto routed = group_gauge(cluster.metrics(), "troupe_group_requests_routed");
  ASSERT_EQ(routed.size(), 2u);
  for (const auto& [group, n] : routed) EXPECT_GT(n, 0) << group << " received no work";

  // The non-streamed and chat forms of the same work agree too.
  auto whole = http_request(cluster.port(), "POST", "/v1/completions", completion_body(prompts[0], 24, false));
  ASSERT_EQ(whole.status, 200) << whole.body;
  simdjson::dom::parser parser;
  auto doc = parser.parse(whole.body);
  ASSERT_FALSE(doc.error()) << whole.body;
  std::string_view text;
  ASSERT_FALSE(doc["choices"].at(0)["text"].get(text));
  EXPECT_EQ(std::string(text), expected[0]);
  const auto chat = run_capture(std::string(TROUPE_BIN) + " generate --model " + cluster_model() +
                                " --chat 'Hi there' --max-tokens 12 --temperature 0 --json 2>&1");
  auto c = http_request(cluster.port(), "POST", "/v1/chat/completions",
                        "{\"model\":\"cluster-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}],"
                        "\"max_tokens\":12,\"temperature\":0,\"stream\":true}");
  EXPECT_EQ(parse_stream(c.status, c.body).text, json_string_field(chat, "text"));
}

// kill -9 of a worker under 16 streams, greedy and seeded, on two workers: the requests waiting in
// its queue are routed again and those streaming on it are resumed on the other worker after the
// tokens already sent, so every stream completes with every token it asked for and no error; the
// autoscaler has a replacement serving within 5 s.
TEST(cluster, a_killed_workers_streams_are_resumed_and_its_queued_requests_routed_again) {
  // Few sequences per step, so that some requests wait in a group's queue (never started).
  local_cluster cluster(cluster_model(), 2, {"--max-running", "2"});
  ASSERT_NE(cluster.port(), 0);
  const auto pids = cluster.worker_pids();
  ASSERT_EQ(pids.size(), 2u);
  constexpr int requests = 16;
  // Half greedy, half sampled with a seed.
  stream_load load(cluster.port(), requests, [](int i) {
    const std::string temperature = i % 2 ? "0.8,\"seed\":" + std::to_string(100 + i) : "0";
    return "{\"model\":\"cluster-model\",\"prompt\":\"Request number " + std::to_string(i) +
           "\",\"max_tokens\":300,\"stream\":true,\"ignore_eos\":true,\"temperature\":" + temperature +
           ",\"stream_options\":{\"include_usage\":true}}";
  });
  // Kill one worker once both groups stream (2 running each; the other 12 requests wait in queues).
  ASSERT_TRUE(load.started_at_least(4));
  ::kill(pids[0], SIGKILL);
  const auto killed = std::chrono::steady_clock::now();
  // The autoscaler replaces the dead worker: a new group serves within 5 s.
  double replaced_s = -1;
  while (std::chrono::steady_clock::now() - killed < std::chrono::seconds(20)) {
    const auto children = cluster.child_pids();
    if (cluster.live_groups() == 2 && children.size() == 2 &&
        std::find(children.begin(), children.end(), pids[0]) == children.end()) {
      replaced_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - killed).count();
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_GE(replaced_s, 0) << cluster.log();
  EXPECT_LT(replaced_s, 5.0) << "the replacement served " << replaced_s << " s after the kill";
  load.join();
  for (const auto& r : load.results) {
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.error, "") << "a stream on the killed worker was not resumed";
    EXPECT_TRUE(r.done);
    EXPECT_EQ(r.finish, "length");
    EXPECT_EQ(r.completion_tokens, 300) << "usage counts every token the client was sent";
  }
  // Requests were streaming on the killed group (2 running): they were resumed.
  const std::regex resumed("([0-9]+) streaming requests resumed on other groups, 0 ended with an error");
  std::smatch m;
  const std::string log = cluster.log();
  ASSERT_TRUE(std::regex_search(log, m, resumed)) << log;
  EXPECT_GE(std::stoi(m[1]), 1) << log;
  EXPECT_NE(log.find("exited with status 137"), std::string::npos) << log;
  // New requests keep working, on both groups.
  for (int i = 0; i < 4; ++i) {
    auto r = stream_completion(cluster.port(), completion_body("After the failure", 8, true));
    EXPECT_EQ(r.status, 200) << r.error;
    EXPECT_TRUE(r.done);
  }
  const std::string metrics = cluster.metrics();
  EXPECT_NE(metrics.find("troupe_autoscaler_decisions_total{direction=\"replace\",reason=\"worker exited\"} 1"),
            std::string::npos) << metrics;
}

TEST(cluster, client_hanging_up_mid_stream_aborts_its_request_at_the_worker) {
  local_cluster cluster(cluster_model(), 1);
  ASSERT_NE(cluster.port(), 0);
  {
    http_connection conn(cluster.port());
    const std::string body = completion_body("A very long story", 2000, true, ",\"ignore_eos\":true");
    conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
                  "\r\n\r\n" + body);
    ASSERT_EQ(conn.read_head(), 200);
    conn.read_body_until([](const std::string& b) { return b.find("\"text\"") != std::string::npos; });
  }  // hangs up after the first tokens
  // The group stops generating for it: its load reports (every second) show nothing running and
  // the KV blocks free, well before 2000 tokens could have been generated.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  double running = -1, kv = -1, generated = -1;
  const auto only = [](const std::map<std::string, double>& per_group) {
    return per_group.size() == 1 ? per_group.begin()->second : -1.0;
  };
  while (std::chrono::steady_clock::now() < deadline) {
    const auto m = cluster.metrics();
    running = only(group_gauge(m, "troupe_group_running"));
    kv = only(group_gauge(m, "troupe_group_kv_used_fraction"));
    generated = only(group_gauge(m, "troupe_group_generated_tokens"));
    if (running == 0 && kv == 0 && generated > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(running, 0);
  EXPECT_EQ(kv, 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  const double later = only(group_gauge(cluster.metrics(), "troupe_group_generated_tokens"));
  EXPECT_EQ(later, generated) << "the group kept generating for a client that had left";
  EXPECT_LT(generated, 2000);
}

TEST(cluster, one_node_with_both_roles_serves_and_stops_cleanly) {
  local_cluster node(1, {"node", "--roles", "router,worker", "--model", cluster_model(), "--listen", "127.0.0.1:0",
                         "--http", "127.0.0.1:0", "--threads", "1", "--kv-memory", std::to_string(32 << 20),
                         "--cluster-certs", node_certs()});
  ASSERT_NE(node.port(), 0);
  const auto out = run_capture(std::string(TROUPE_BIN) + " generate --model " + cluster_model() +
                               " --prompt 'Hello there' --max-tokens 16 --temperature 0 --json 2>&1");
  auto r = stream_completion(node.port(), completion_body("Hello there", 16, true));
  EXPECT_EQ(r.status, 200) << r.error;
  EXPECT_EQ(r.text, json_string_field(out, "text"));
  auto models = http_request(node.port(), "GET", "/v1/models");
  EXPECT_EQ(models.status, 200);
  EXPECT_NE(models.body.find("\"id\":\"cluster-model\""), std::string::npos) << models.body;
  EXPECT_NE(models.body.find("\"max_model_len\":2048"), std::string::npos) << models.body;
}

// A worker node joined to a router stops on SIGTERM within seconds, every time (CAF 0.17 could keep
// a detached leader alive forever once the router held its handle; the leader is scheduled now).
TEST(cluster, a_worker_node_stops_cleanly_on_sigterm_every_time) {
  local_cluster router(0, {"node", "--roles", "router", "--model", cluster_model(), "--listen", "127.0.0.1:0",
                           "--http", "127.0.0.1:0", "--no-cache", "--cluster-certs", node_certs("router")});
  ASSERT_NE(router.cluster_port(), 0);
  for (int i = 0; i < 4; ++i) {
    const std::string log = process_tmp() + "/sigterm-worker-" + std::to_string(i) + ".log";
    const pid_t worker = spawn_troupe({"node", "--roles", "worker", "--model", cluster_model(), "--join",
                                       "127.0.0.1:" + std::to_string(router.cluster_port()), "--threads", "1",
                                       "--kv-memory", std::to_string(32 << 20), "--cluster-certs", node_certs()},
                                      log);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (router.live_groups() != 1 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_EQ(router.live_groups(), 1) << read_file(log);
    auto r = stream_completion(router.port(), completion_body("Hello there", 4, true));
    EXPECT_EQ(r.status, 200) << r.error;
    const int status = stop_process(worker, std::chrono::seconds(5));
    ASSERT_TRUE(status >= 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << "run " << i << ": the worker did not stop within 5 s of SIGTERM\n" << read_file(log);
    while (router.live_groups() != 0 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

TEST(cluster, node_flags_are_checked_with_clear_errors) {
  const std::string bin = std::string(TROUPE_BIN) + " node --cluster-certs " + node_certs();
  EXPECT_NE(run_capture(bin + " --roles router,chef --model " + cluster_model() + " 2>&1").find("unknown role 'chef'"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles worker --model " + cluster_model() + " 2>&1").find("needs --join"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles router --model " + cluster_model() + " --http nowhere 2>&1")
                .find("is not HOST:PORT"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles router,worker --model " + cluster_model() +
                        " --listen 127.0.0.1:0 --http 127.0.0.1:0 --tp 65 2>&1")
                .find("--tp 65: give 1 to 64 ranks"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles router,worker --model " + cluster_model() +
                        " --listen 127.0.0.1:0 --http 127.0.0.1:0 --device cuda:97 2>&1")
                .find("--device cuda:97"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles worker --model " + cluster_model() +
                        " --join 127.0.0.1:1 --join-timeout 1 2>&1")
                .find("no router reachable"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + " --roles router --model /nonexistent/model 2>&1").find("/nonexistent/model"),
            std::string::npos);
  EXPECT_NE(run_capture(std::string(TROUPE_BIN) + " up --workers 0 2>&1").find("--workers 0"), std::string::npos);
  EXPECT_NE(run_capture(std::string(TROUPE_BIN) + " up --model " + cluster_model() + " --device cuda:x 2>&1")
                .find("--device 'cuda:x'"),
            std::string::npos);
}

TEST(cluster, malformed_requests_get_their_status_and_error_body_and_the_server_keeps_serving) {
  local_cluster cluster(cluster_model(), 1);
  ASSERT_NE(cluster.port(), 0);
  const uint16_t port = cluster.port();
  struct bad_case {
    const char* what;
    std::string path, body;
    int status;
    const char* message;  // a part of the error message
    const char* param;    // expected "param" ("" = do not check)
  };
  const std::vector<bad_case> cases = {
      {"malformed JSON", "/v1/completions", "{\"model\": \"cluster-model\", \"prompt\": ", 400, "malformed JSON", ""},
      {"not an object", "/v1/chat/completions", "[1,2,3]", 400, "", ""},
      {"unknown model", "/v1/completions", "{\"model\":\"gpt-9\",\"prompt\":\"hi\"}", 404, "gpt-9", "model"},
      {"prompt over the context", "/v1/completions",
       "{\"model\":\"cluster-model\",\"prompt\":[" + [] {
         std::string ids;
         for (int i = 0; i < 2100; ++i) ids += (i ? ",1" : "1");
         return ids;
       }() + "]}",
       400, "maximum context length is 2048", "prompt"},
      {"prompt plus max_tokens over the context", "/v1/completions",
       "{\"model\":\"cluster-model\",\"prompt\":\"hi\",\"max_tokens\":5000}", 400, "maximum context length is 2048",
       "max_tokens"},
      {"temperature out of range", "/v1/completions",
       "{\"model\":\"cluster-model\",\"prompt\":\"hi\",\"temperature\":7}", 400, "temperature", "temperature"},
      {"top_p of the wrong type", "/v1/chat/completions",
       "{\"model\":\"cluster-model\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],\"top_p\":\"high\"}", 400,
       "top_p", "top_p"},
      {"n too large", "/v1/completions", "{\"model\":\"cluster-model\",\"prompt\":\"hi\",\"n\":1000}", 400, "n", "n"},
      {"token id outside the vocabulary", "/v1/completions",
       "{\"model\":\"cluster-model\",\"prompt\":[1,2,999999]}", 400, "outside the vocabulary", "prompt"},
      {"bad role", "/v1/chat/completions",
       "{\"model\":\"cluster-model\",\"messages\":[{\"role\":\"wizard\",\"content\":\"hi\"}]}", 400, "role",
       "messages[0].role"},
      {"unknown endpoint", "/v1/embeddings", "{}", 404, "no such endpoint", ""},
  };
  for (const auto& c : cases) {
    auto r = http_request(port, "POST", c.path, c.body);
    EXPECT_EQ(r.status, c.status) << c.what << ": " << r.body;
    simdjson::dom::parser parser;
    auto doc = parser.parse(r.body);
    ASSERT_FALSE(doc.error()) << c.what << ": not JSON: " << r.body;
    std::string_view message, type;
    EXPECT_FALSE(doc["error"]["message"].get(message)) << c.what << ": " << r.body;
    EXPECT_FALSE(doc["error"]["type"].get(type)) << c.what << ": " << r.body;
    EXPECT_NE(std::string(message).find(c.message), std::string::npos) << c.what << ": " << message;
    if (*c.param) {
      std::string_view param;
      EXPECT_FALSE(doc["error"]["param"].get(param)) << c.what << ": " << r.body;
      EXPECT_EQ(param, c.param) << c.what;
    }
  }
  // Wrong method.
  EXPECT_EQ(http_request(port, "GET", "/v1/completions").status, 405);
  // Oversized body: refused by its declared length, unread.
  {
    http_connection conn(port);
    conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 999999999\r\n\r\n{\"model\":");
    EXPECT_EQ(conn.read_head(), 413);
    EXPECT_NE(conn.read_body_until([](const std::string&) { return false; }).find("larger than the limit"),
              std::string::npos);
  }
  // Oversized body without a declared length (chunked): refused at the limit.
  {
    http_connection conn(port);
    conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    const std::string chunk(1 << 20, ' ');
    char size_line[32];
    std::snprintf(size_line, sizeof size_line, "%zx\r\n", chunk.size());
    int status = 0;
    for (int i = 0; i < 20 && status == 0; ++i)
      if (!conn.send_raw(std::string(size_line) + chunk + "\r\n")) break;
    status = conn.read_head();
    EXPECT_EQ(status, 413);
  }
  // Non-numeric Content-Length.
  {
    http_connection conn(port);
    conn.send_raw("POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: ten\r\n\r\n{}");
    const int status = conn.read_head();
    EXPECT_EQ(status, 400);
    EXPECT_NE(conn.read_body_until([](const std::string&) { return false; }).find("\"error\""), std::string::npos);
  }
  // And the server still serves.
  auto ok = stream_completion(port, completion_body("Still here", 6, true));
  EXPECT_EQ(ok.status, 200) << ok.error;
  EXPECT_TRUE(ok.done);
  auto health = http_request(port, "GET", "/health");
  EXPECT_EQ(health.status, 200);
  const auto m = cluster.metrics();
  EXPECT_NE(m.find("troupe_requests_total{endpoint=\"completions\",status=\"400\"}"), std::string::npos);
  EXPECT_NE(m.find("troupe_time_to_first_token_seconds_bucket"), std::string::npos);
}

}  // namespace
}  // namespace troupe::test
