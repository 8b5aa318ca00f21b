// Per-key fairness and quotas with real processes (`troupe up`, one worker running one sequence at
// a time, nothing queued at the worker: every other request waits at the router's fair queue):
// a key that floods the cluster does not make a light key wait behind its backlog; a key's token
// quota refuses with 429 once spent; and a big chat request is prepared off the HTTP thread, so
// /health answers while it is.
#include <gtest/gtest.h>

#include <atomic>
#include <fstream>
#include <mutex>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"
#include "tests/cluster/streams.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;
using clock_type = std::chrono::steady_clock;

std::string key_file() {
  const std::string file = process_tmp() + "/fair-keys.txt";
  std::ofstream f(file);
  f << "flood-key label=flood\n"
    << "light-key label=light\n"
    << "metered-key label=metered tpm=120\n"
    << "tiny-key label=tiny tpm=50\n";
  return file;
}

std::string post(const std::string& key, const std::string& body, const std::string& path = "/v1/completions") {
  return "POST " + path + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer " + key +
         "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
}

// A streamed request whose first content event's time is recorded.
struct timed_stream {
  int status = 0;
  clock_type::time_point first_token{};
  std::string body;
};

timed_stream run_stream(uint16_t port, const std::string& key, const std::string& body) {
  timed_stream out;
  http_connection conn(port, 120);
  conn.send_raw(post(key, body));
  out.status = conn.read_head();
  if (out.status != 200) {
    out.body = conn.read_body_until([](const std::string&) { return false; });
    return out;
  }
  conn.read_body_until([](const std::string& b) { return b.find("\"text\":\"") != std::string::npos &&
                                                          b.find("\"text\":\"\"") == std::string::npos; });
  out.first_token = clock_type::now();
  out.body = conn.read_body_until([](const std::string&) { return false; });
  return out;
}

double gauge(const std::string& metrics, const std::string& name) {
  const size_t at = metrics.find("\n" + name + " ");
  if (at == std::string::npos) return -1;
  return std::stod(metrics.substr(at + name.size() + 2));
}

class fairness : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    model_ = new std::string(cluster_model("fairness-model", 1024, 2));
    // --max-queue-wait 0: the count bound alone, so that the order, not the wait bound, is tested
    // (at one sequence at a time the measured start rate would refuse most of the flood).
    cluster_ = new local_cluster(*model_, 1,
                                 {"--max-running", "1", "--group-queue", "0", "--max-queue-wait", "0",
                                  "--api-key-file", key_file()});
  }
  static void TearDownTestSuite() {
    delete cluster_;
    delete model_;
  }
  static inline std::string* model_ = nullptr;
  static inline local_cluster* cluster_ = nullptr;
};

TEST_F(fairness, a_flooding_key_does_not_make_a_light_key_wait_behind_it) {
  ASSERT_NE(cluster_->port(), 0);
  const uint16_t port = cluster_->port();
  constexpr int flood = 8;
  std::vector<timed_stream> floods(flood);
  std::vector<std::thread> threads;
  for (int i = 0; i < flood; ++i) {
    threads.emplace_back([&floods, port, i]() {
      floods[size_t(i)] = run_stream(port, "flood-key",
                                     completion_body("Flood " + std::to_string(i), 1000, true, ",\"ignore_eos\":true",
                                                     "fairness-model"));
    });
    std::this_thread::sleep_for(20ms);  // in order
  }
  // Wait until the flood's backlog waits at the router (one runs, the rest wait). A slow build (the
  // sanitized one) may never queue them all at once: after 3 s a backlog of 2 will do.
  const auto start = clock_type::now();
  double waiting = 0;
  bool backlog = false;
  while (!backlog && clock_type::now() < start + 20s) {
    waiting = gauge(http_request(port, "GET", "/metrics", "", "Authorization: Bearer flood-key\r\n").body,
                    "troupe_router_waiting_requests");
    backlog = waiting >= flood - 2 || (waiting >= 2 && clock_type::now() > start + 3s);
    if (!backlog) std::this_thread::sleep_for(5ms);
  }
  timed_stream light;
  if (backlog)
    light = run_stream(port, "light-key", completion_body("Light", 8, true, ",\"ignore_eos\":true", "fairness-model"));
  for (auto& t : threads) t.join();
  ASSERT_TRUE(backlog) << "the flood's backlog never waited at the router; the first flood request: "
                       << floods[0].status << " " << floods[0].body.substr(0, 300);
  ASSERT_EQ(light.status, 200) << light.body;
  EXPECT_TRUE(parse_stream(200, light.body).done);
  int flood_after_light = 0;
  for (const auto& f : floods) {
    ASSERT_EQ(f.status, 200) << f.body;
    EXPECT_EQ(parse_stream(200, f.body).finish, "length");
    flood_after_light += f.first_token > light.first_token;
  }
  std::printf("of %d flood requests (%d waiting when the light key's came), %d started after it\n", flood,
              int(waiting), flood_after_light);
  // First come, first served, the light request would start last; the fair queue lets at most one
  // more flood request (the tie at the light key's arrival) go before it.
  EXPECT_GE(flood_after_light, int(waiting) - 1);
}

TEST_F(fairness, a_spent_token_quota_gets_429_naming_it_and_other_keys_go_on) {
  const uint16_t port = cluster_->port();
  // 120 tokens per minute: a prompt and 130 generated tokens spend it (and more: the output is
  // charged when it is known, so the bucket goes below empty).
  auto first = http_request(port, "POST", "/v1/completions",
                            completion_body("Quota", 130, false, ",\"ignore_eos\":true", "fairness-model"),
                            "Authorization: Bearer metered-key\r\n");
  ASSERT_EQ(first.status, 200) << first.body;
  auto second = http_request(port, "POST", "/v1/completions",
                             completion_body("Again", 4, false, {}, "fairness-model"),
                             "Authorization: Bearer metered-key\r\n");
  EXPECT_EQ(second.status, 429) << second.body;
  EXPECT_NE(second.body.find("quota of 120 tokens per minute"), std::string::npos) << second.body;
  std::string h = second.headers;
  std::transform(h.begin(), h.end(), h.begin(), [](unsigned char c) { return char(std::tolower(c)); });
  EXPECT_NE(h.find("retry-after: "), std::string::npos) << second.headers;
  auto other = http_request(port, "POST", "/v1/completions", completion_body("Other", 4, false, {}, "fairness-model"),
                            "Authorization: Bearer light-key\r\n");
  EXPECT_EQ(other.status, 200) << other.body;
  // A prompt larger than the whole quota can never pass: 400, not "retry later".
  std::string words;
  for (int i = 0; i < 200; ++i) words += " word";
  auto huge = http_request(port, "POST", "/v1/completions", completion_body(words, 1, false, {}, "fairness-model"),
                           "Authorization: Bearer tiny-key\r\n");
  EXPECT_EQ(huge.status, 400) << huge.body;
  EXPECT_NE(huge.body.find("exceed this API key's quota of 50 tokens per minute"), std::string::npos) << huge.body;
}

TEST_F(fairness, health_answers_while_a_big_chat_request_is_prepared) {
  const uint16_t port = cluster_->port();
  // ~3.5 MB: 100,000 messages. The template and tokenizer take seconds on them; the prompt is then
  // longer than the model's context, so the answer is a 400 (after the work).
  std::string body = "{\"model\":\"fairness-model\",\"max_tokens\":1,\"messages\":[";
  for (int i = 0; i < 100000; ++i) {
    if (i) body += ',';
    body += "{\"role\":\"user\",\"content\":\"message number " + std::to_string(i) + "\"}";
  }
  body += "]}";
  std::printf("big chat request: %.1f MB\n", double(body.size()) / 1e6);
  std::atomic<bool> big_done{false};
  int big_status = 0;
  double big_seconds = 0;
  std::thread big([&]() {
    const auto sent = clock_type::now();
    http_connection conn(port, 120);
    conn.send_raw(post("light-key", body, "/v1/chat/completions"));
    big_status = conn.read_head();
    big_seconds = std::chrono::duration<double>(clock_type::now() - sent).count();
    big_done = true;
  });
  std::this_thread::sleep_for(300ms);  // its body is read and its preparation under way
  std::vector<double> health;
  int answered_before_big = 0;
  for (int i = 0; i < 10 && !big_done; ++i) {
    const auto sent = clock_type::now();
    auto r = http_request(port, "GET", "/health", "");
    health.push_back(std::chrono::duration<double>(clock_type::now() - sent).count());
    EXPECT_EQ(r.status, 200) << r.body;
    answered_before_big += !big_done;
    std::this_thread::sleep_for(50ms);
  }
  big.join();
  EXPECT_EQ(big_status, 400);
  std::printf("big request answered after %.2f s; /health (s):", big_seconds);
  for (double s : health) std::printf(" %.3f", s);
  std::printf("\n");
  if (big_seconds > 1.0) {
    // Prepared on the HTTP thread, /health would wait for the whole preparation each time.
    EXPECT_GE(answered_before_big, 3) << "/health did not answer while the big request was prepared";
    for (double s : health) EXPECT_LT(s, 0.5) << "/health waited on the big request";
  } else {
    std::printf("the big request took under 1 s here: the check of /health meanwhile is not meaningful\n");
  }
}

}  // namespace
}  // namespace troupe::test
