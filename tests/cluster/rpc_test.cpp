// The Cap'n Proto API end to end: `troupe up --rpc` with real worker processes, driven through the
// troupe_client library and `troupe generate --connect`: concurrency and equality with the HTTP API,
// cancellation and disconnection freeing the worker's KV, API keys, malformed and oversized input,
// parameter errors that match the HTTP API's.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <thread>

#include "client/client.hpp"
#include "tests/cluster/cluster_fixture.hpp"

namespace troupe::test {
namespace {

// The default tiny model with a short context (as cluster_test.cpp's).
const std::string& rpc_model() {
  static const std::string dir = cluster_model("rpc-model", 2048);
  return dir;
}

const std::vector<std::string> rpc_args = {"--rpc", "127.0.0.1:0"};

std::vector<std::string> with_rpc(std::vector<std::string> extra) {
  extra.insert(extra.begin(), rpc_args.begin(), rpc_args.end());
  return extra;
}



// The HTTP API's answer for a greedy, non-streamed completion: its text, or its error message.
std::string http_completion(uint16_t port, const std::string& fields) {
  auto r = http_request(port, "POST", "/v1/completions", "{\"model\":\"rpc-model\"," + fields + "}");
  simdjson::dom::parser parser;
  auto doc = parser.parse(r.body);
  if (doc.error()) return "<not json: " + r.body + ">";
  std::string_view v;
  if (r.status == 200 && !doc["choices"].at(0)["text"].get(v)) return std::string(v);
  if (!doc["error"]["message"].get(v)) return "error: " + std::string(v);
  return "<unexpected: " + r.body + ">";
}

client::request greedy(const std::string& prompt, int max_tokens) {
  client::request r;
  r.model = "rpc-model";
  r.prompt = prompt;
  r.sampling.temperature = 0;
  r.sampling.max_tokens = max_tokens;
  return r;
}

struct streamed {
  std::string text, finish, error;
  int64_t completion_tokens = -1;
  int chunks = 0;
};

streamed stream(client::client& c, const client::request& r) {
  streamed s;
  auto res = c.generate(r, [&s](const client::chunk& ch) {
    s.text += ch.text;
    ++s.chunks;
    if (!ch.finish_reason.empty()) s.finish = ch.finish_reason;
    return true;
  });
  if (!res) {
    s.error = res.message();
    return s;
  }
  s.completion_tokens = res->completion_tokens;
  if (s.finish.empty() && !res->finish_reasons.empty()) s.finish = res->finish_reasons[0];
  return s;
}

double only(const std::map<std::string, double>& per_group) {
  return per_group.size() == 1 ? per_group.begin()->second : -1.0;
}

// The single group's generated-token counter (from its last load report).
double generated_tokens(const local_cluster& cluster) {
  return only(group_gauge(cluster.metrics(), "troupe_group_generated_tokens"));
}

// Waits until the single group reports generating past `before` and then running nothing with no
// KV blocks held (reports come every second: an older one predates the request); then checks
// that it stopped generating, as cluster_test.cpp's hang-up test does.
void expect_group_idle(const local_cluster& cluster, double before, int64_t max_tokens) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  double running = -1, kv = -1, generated = -1;
  while (std::chrono::steady_clock::now() < deadline) {
    const auto m = cluster.metrics();
    running = only(group_gauge(m, "troupe_group_running"));
    kv = only(group_gauge(m, "troupe_group_kv_used_fraction"));
    generated = only(group_gauge(m, "troupe_group_generated_tokens"));
    if (running == 0 && kv == 0 && generated > before) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_EQ(running, 0);
  EXPECT_EQ(kv, 0);
  EXPECT_GT(generated, before);
  std::this_thread::sleep_for(std::chrono::milliseconds(1200));
  EXPECT_EQ(generated_tokens(cluster), generated) << "the group kept generating for a client that had left";
  EXPECT_LT(generated - before, double(max_tokens));
}

TEST(rpc, concurrent_streaming_clients_match_the_http_api) {
  local_cluster cluster(rpc_model(), 2, rpc_args);
  ASSERT_NE(cluster.rpc_port(), 0);
  const std::vector<std::string> prompts = {"The actors of a distributed system", "Hello there",
                                            "Once upon a time", "A shard group is",
                                            "Tokens stream back", "Routers route", "One two three", "Caches"};
  std::vector<std::string> expected;
  // The response cache stays out of it: every request runs on a group.
  for (const auto& p : prompts)
    expected.push_back(
        http_completion(cluster.port(), "\"prompt\":\"" + p + "\",\"max_tokens\":24,\"temperature\":0,\"cache\":false"));
  constexpr int clients = 64;
  std::vector<streamed> results(clients);
  std::vector<std::thread> threads;
  for (int i = 0; i < clients; ++i)
    threads.emplace_back([&, i]() {
      // One connection (and kj event loop) per thread.
      auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
      if (!c) {
        results[size_t(i)].error = c.message();
        return;
      }
      auto r = greedy(prompts[size_t(i) % prompts.size()], 24);
      r.sampling.cache = false;
      results[size_t(i)] = stream(*c, r);
    });
  for (auto& t : threads) t.join();
  for (int i = 0; i < clients; ++i) {
    const auto& r = results[size_t(i)];
    EXPECT_EQ(r.error, "") << "client " << i;
    EXPECT_EQ(r.text, expected[size_t(i) % prompts.size()]) << "client " << i;
    EXPECT_FALSE(r.finish.empty());
    EXPECT_GT(r.completion_tokens, 0);
    // (No count of chunks here: under this load a session may drain several steps in one poll.
    // That tokens stream before the end is the cancel test's to show.)
  }
  // The cluster's snapshot is republished on the groups' load reports (every second): wait for one.
  std::map<std::string, double> routed;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  do {
    routed = group_gauge(cluster.metrics(), "troupe_group_requests_routed");
    if (routed.size() == 2 && routed.begin()->second > 0 && routed.rbegin()->second > 0) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < until);
  ASSERT_EQ(routed.size(), 2u);
  for (const auto& [group, n] : routed) EXPECT_GT(n, 0) << group << " received no RPC work";

  // models and health, and a chat equal to HTTP's.
  auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
  ASSERT_TRUE(c) << c.message();
  auto models = c->models();
  ASSERT_TRUE(models) << models.message();
  ASSERT_EQ(models->size(), 1u);
  EXPECT_EQ((*models)[0].id, "rpc-model");
  EXPECT_EQ((*models)[0].max_model_len, 2048);
  auto health = c->health();
  ASSERT_TRUE(health) << health.message();
  EXPECT_TRUE(health->ready);
  EXPECT_EQ(health->live_groups, 2u);
  client::chat_request chat;
  chat.messages = {{"user", "Hi there"}};  // model left empty: the server's
  chat.sampling.temperature = 0;
  chat.sampling.max_tokens = 12;
  std::string text;
  auto res = c->chat(chat, [&text](const client::chunk& ch) {
    text += ch.text;
    return true;
  });
  ASSERT_TRUE(res) << res.message();
  auto http_chat = http_request(cluster.port(), "POST", "/v1/chat/completions",
                                "{\"model\":\"rpc-model\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi there\"}],"
                                "\"max_tokens\":12,\"temperature\":0}");
  simdjson::dom::parser parser;
  std::string_view content;
  ASSERT_FALSE(parser.parse(http_chat.body)["choices"].at(0)["message"]["content"].get(content)) << http_chat.body;
  EXPECT_EQ(text, std::string(content));
  EXPECT_EQ(res->completion_tokens, 12);
  EXPECT_GT(res->prompt_tokens, 0);
  EXPECT_EQ(int64_t(res->prompt_token_ids.size()), res->prompt_tokens);
}

TEST(rpc, a_client_that_cancels_or_disconnects_mid_stream_frees_the_workers_kv) {
  local_cluster cluster(rpc_model(), 1, rpc_args);
  ASSERT_NE(cluster.rpc_port(), 0);
  auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
  ASSERT_TRUE(c) << c.message();
  auto r = greedy("A very long story", 2000);
  r.sampling.ignore_eos = true;
  int chunks = 0;
  const double before = generated_tokens(cluster);
  auto res = c->generate(r, [&chunks](const client::chunk& ch) { return ch.text.empty() || ++chunks < 3; });
  ASSERT_FALSE(res);
  EXPECT_EQ(res.message(), "cancelled by the caller");
  expect_group_idle(cluster, before, 2000);
  // The connection stays usable after a cancelled call.
  auto after = stream(*c, greedy("After the cancel", 4));
  EXPECT_EQ(after.error, "");
  EXPECT_EQ(after.completion_tokens, 4);

  // A client process killed mid-stream: its connection drops.
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));  // a load report with the 4 tokens
  const double before_kill = generated_tokens(cluster);
  const std::string log = process_tmp() + "/rpc-killed-client.log";
  std::filesystem::remove(log);
  const pid_t pid = spawn_troupe({"generate", "--connect", "127.0.0.1:" + std::to_string(cluster.rpc_port()),
                                  "--prompt", "Another long story", "--max-tokens", "2000", "--ignore-eos",
                                  "--temperature", "0"},
                                 log);
  ASSERT_GT(pid, 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (read_file(log).size() < 16 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  ASSERT_GE(read_file(log).size(), 16u) << "the client did not stream";
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  expect_group_idle(cluster, before_kill, 2000);
}

TEST(rpc, api_keys_guard_the_session) {
  local_cluster cluster(rpc_model(), 1, with_rpc({"--api-key", "secret"}));
  ASSERT_NE(cluster.rpc_port(), 0);
  auto wrong = client::client::connect("127.0.0.1", cluster.rpc_port(), "not-the-key");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.message().find("invalid API key"), std::string::npos) << wrong.message();
  auto empty = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
  ASSERT_FALSE(empty);
  EXPECT_NE(empty.message().find("invalid API key"), std::string::npos) << empty.message();
  auto right = client::client::connect("127.0.0.1", cluster.rpc_port(), "secret");
  ASSERT_TRUE(right) << right.message();
  auto s = stream(*right, greedy("Hello there", 8));
  EXPECT_EQ(s.error, "");
  EXPECT_EQ(s.completion_tokens, 8);
  // The CLI passes the key too.
  const std::string base = std::string(TROUPE_BIN) + " generate --connect 127.0.0.1:" +
                           std::to_string(cluster.rpc_port()) + " --prompt Hi --max-tokens 4 --json";
  EXPECT_NE(run_capture(base + " --api-key secret 2>&1").find("\"finish_reason\":\"length\""), std::string::npos);
  EXPECT_NE(run_capture(base + " --api-key wrong 2>&1").find("invalid API key"), std::string::npos);
}

// Sends `bytes` on a raw TCP connection to the RPC port; true when the server then closes it
// (well before the 10 s socket timeout).
bool sent_and_closed(uint16_t port, const std::string& bytes) {
  http_connection conn(port, 10);
  if (!conn.ok()) return false;
  const auto start = std::chrono::steady_clock::now();
  conn.send_raw(bytes);
  while (conn.read_more()) {
  }
  return std::chrono::steady_clock::now() - start < std::chrono::seconds(5);
}

TEST(rpc, garbage_and_oversized_messages_drop_only_their_connection) {
  local_cluster cluster(rpc_model(), 1, rpc_args);
  ASSERT_NE(cluster.rpc_port(), 0);
  // Garbage bytes: a framing header announcing ~4 billion segments, then noise.
  std::string garbage(4096, '\0');
  for (size_t i = 0; i < garbage.size(); ++i) garbage[i] = char((i * 2654435761u) >> 13);
  garbage[0] = garbage[1] = garbage[2] = garbage[3] = char(0xff);
  EXPECT_TRUE(sent_and_closed(cluster.rpc_port(), garbage));
  // One segment of 2^28 words (2 GiB) declared: refused by its size before anything is allocated.
  std::string huge("\0\0\0\0\0\0\0\x10", 8);
  huge += std::string(1 << 16, 'x');
  EXPECT_TRUE(sent_and_closed(cluster.rpc_port(), huge));
  // A well-formed call over the message limit (a 20 MiB prompt; the limit is 17 MiB): the server
  // drops that connection, and the client's call says so.
  {
    auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
    ASSERT_TRUE(c) << c.message();
    auto r = greedy(std::string(size_t(20) << 20, 'a'), 4);
    auto res = c->generate(r, [](const client::chunk&) { return true; });
    ASSERT_FALSE(res);
    EXPECT_FALSE(res.message().empty());  // the connection was dropped under it (e.g. a broken pipe)
  }
  // A large prompt under the limit is read and refused by the model's context, as HTTP refuses it.
  {
    auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
    ASSERT_TRUE(c) << c.message();
    std::string words;
    while (words.size() < (size_t(256) << 10)) words += "many words ";
    auto res = c->generate(greedy(words, 4), [](const client::chunk&) { return true; });
    ASSERT_FALSE(res);
    EXPECT_NE(res.message().find("context"), std::string::npos) << res.message();
  }
  // The server keeps serving both APIs.
  auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
  ASSERT_TRUE(c) << c.message();
  auto s = stream(*c, greedy("Still here", 6));
  EXPECT_EQ(s.error, "");
  EXPECT_EQ(s.completion_tokens, 6);
  EXPECT_EQ(cluster.live_groups(), 1);
  EXPECT_EQ(http_completion(cluster.port(), "\"prompt\":\"Still here\",\"max_tokens\":6,\"temperature\":0"), s.text);
}

TEST(rpc, invalid_parameters_fail_with_the_http_apis_message) {
  local_cluster cluster(rpc_model(), 1, rpc_args);
  ASSERT_NE(cluster.rpc_port(), 0);
  auto c = client::client::connect("127.0.0.1", cluster.rpc_port(), "");
  ASSERT_TRUE(c) << c.message();
  struct bad_case {
    std::function<void(client::request&)> set;
    std::string http_body;  // the same request over HTTP
    std::string names;      // what the message must name
  };
  const std::string base = "\"prompt\":\"Hello\",\"max_tokens\":4,\"temperature\":0";
  const std::vector<bad_case> cases = {
      {[](client::request& r) { r.sampling.temperature = 7; }, "\"prompt\":\"Hello\",\"max_tokens\":4,\"temperature\":7",
       "'temperature'"},
      {[](client::request& r) { r.sampling.top_p = 0; }, base + ",\"top_p\":0", "'top_p'"},
      {[](client::request& r) { r.sampling.n = 17; }, base + ",\"n\":17", "'n'"},
      {[](client::request& r) { r.sampling.max_tokens = -3; }, "\"prompt\":\"Hello\",\"max_tokens\":-3,\"temperature\":0",
       "'max_tokens'"},
      {[](client::request& r) { r.sampling.logprobs = 21; }, base + ",\"logprobs\":21", "'logprobs'"},
      {[](client::request& r) { r.sampling.stop = {"a", ""}; }, base + ",\"stop\":[\"a\",\"\"]", "'stop[1]'"},
      {[](client::request& r) { r.sampling.top_k = -2; }, base + ",\"top_k\":-2", "'top_k'"},
      {[](client::request& r) { r.sampling.presence_penalty = 2.5f; }, base + ",\"presence_penalty\":2.5",
       "'presence_penalty'"},
      {[](client::request& r) { r.prompt_tokens = {1, 999999}; },
       "\"prompt\":[1,999999],\"max_tokens\":4,\"temperature\":0", "999999"},
      {[](client::request& r) { r.sampling.max_tokens = 4000; }, "\"prompt\":\"Hello\",\"max_tokens\":4000,\"temperature\":0",
       "context"},
  };
  for (const auto& bc : cases) {
    auto r = greedy("Hello", 4);
    bc.set(r);
    auto res = c->generate(r, [](const client::chunk&) { return true; });
    ASSERT_FALSE(res) << bc.names;
    EXPECT_NE(res.message().find(bc.names), std::string::npos) << res.message();
    EXPECT_EQ("error: " + res.message(), http_completion(cluster.port(), bc.http_body)) << bc.names;
  }
  // An empty prompt and an unknown model: named as HTTP names them.
  auto r = greedy("", 4);
  auto res = c->generate(r, [](const client::chunk&) { return true; });
  ASSERT_FALSE(res);
  EXPECT_EQ(res.message(), "'prompt' must not be empty");
  r = greedy("Hello", 4);
  r.model = "no-such-model";
  res = c->generate(r, [](const client::chunk&) { return true; });
  ASSERT_FALSE(res);
  EXPECT_NE(res.message().find("'no-such-model'"), std::string::npos) << res.message();
  auto http = http_request(cluster.port(), "POST", "/v1/completions", "{\"model\":\"no-such-model\",\"prompt\":\"Hello\"}");
  EXPECT_EQ(http.status, 404);
  simdjson::dom::parser parser;
  std::string_view message;
  ASSERT_FALSE(parser.parse(http.body)["error"]["message"].get(message)) << http.body;
  EXPECT_EQ(res.message(), std::string(message));
  // Chat roles are checked as HTTP checks them.
  client::chat_request chat;
  chat.messages = {{"user", "Hi"}, {"wizard", "Hi"}};
  auto cr = c->chat(chat, [](const client::chunk&) { return true; });
  ASSERT_FALSE(cr);
  EXPECT_NE(cr.message().find("'messages[1].role'"), std::string::npos) << cr.message();
  // The session is still good.
  EXPECT_EQ(stream(*c, greedy("Hello", 4)).completion_tokens, 4);
}

TEST(rpc, generate_connect_prints_what_local_generate_prints) {
  local_cluster cluster(rpc_model(), 1, rpc_args);
  ASSERT_NE(cluster.rpc_port(), 0);
  const std::string remote = std::string(TROUPE_BIN) + " generate --connect 127.0.0.1:" + std::to_string(cluster.rpc_port());
  const std::string local = std::string(TROUPE_BIN) + " generate --model " + rpc_model();
  for (const std::string args : {" --prompt 'Hello there' --max-tokens 20 --temperature 0",
                                 " --chat 'Hi there' --system 'Be brief' --max-tokens 12 --temperature 0",
                                 " --prompt-tokens 5,6,7,8 --max-tokens 10 --temperature 0"}) {
    // Text mode: stdout only (the summary line goes to stderr).
    EXPECT_EQ(run_capture(remote + args + " 2>/dev/null"), run_capture(local + args + " 2>/dev/null")) << args;
    const auto r = run_capture(remote + args + " --json 2>&1");
    const auto l = run_capture(local + args + " --json 2>&1");
    EXPECT_EQ(json_string_field(r, "text"), json_string_field(l, "text")) << args;
    EXPECT_EQ(json_string_field(r, "finish_reason"), json_string_field(l, "finish_reason")) << args;
    const auto ids = [](const std::string& json, const char* field) {
      const auto at = json.find(std::string("\"") + field + "\":");
      return at == std::string::npos ? std::string("<none>") : json.substr(at, json.find(']', at) - at);
    };
    EXPECT_EQ(ids(r, "prompt_tokens"), ids(l, "prompt_tokens")) << args;
    EXPECT_EQ(ids(r, "tokens"), ids(l, "tokens")) << args;
    EXPECT_NE(ids(r, "tokens"), "<none>") << r;
  }
  // Errors reach the terminal with a non-zero status.
  EXPECT_NE(run_capture(remote + " --prompt Hi --temperature 7 2>&1").find("'temperature'"), std::string::npos);
}

TEST(rpc, every_generated_token_id_reaches_the_client_even_without_text) {
  // A 32,000-token vocabulary of random weights generates many tokens that end inside a UTF-8
  // character: their deltas carry no text, and their ids must still reach the client.
  const std::string dir = process_tmp() + "/rpc-wide-vocab";
  if (!std::filesystem::exists(dir + "/config.json")) {
    engine::tiny_model_spec spec;
    spec.vocab = 32000;
    spec.max_position = 1024;
    spec.layers = 2;
    ASSERT_TRUE(engine::make_tiny_model(spec, dir));
  }
  local_cluster cluster(dir, 1, with_rpc({"--no-cache"}));
  ASSERT_NE(cluster.rpc_port(), 0);
  const std::string remote = std::string(TROUPE_BIN) + " generate --connect 127.0.0.1:" + std::to_string(cluster.rpc_port());
  const std::string local = std::string(TROUPE_BIN) + " generate --model " + dir;
  for (const std::string prompt : {"1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16", "21,22,23", "7"}) {
    const std::string args = " --prompt-tokens " + prompt + " --max-tokens 32 --temperature 0 --ignore-eos --json 2>&1";
    const auto r = run_capture(remote + args);
    const auto l = run_capture(local + args);
    const auto tokens = [](const std::string& json) {
      const auto at = json.find("\"tokens\":");
      return at == std::string::npos ? std::string("<none>") : json.substr(at, json.find(']', at) - at);
    };
    const std::string want = tokens(l);
    EXPECT_EQ(tokens(r), want) << prompt;
    EXPECT_EQ(std::count(want.begin(), want.end(), ','), 31) << "32 ids locally: " << l;
    EXPECT_EQ(json_string_field(r, "text"), json_string_field(l, "text")) << prompt;
  }
}

}  // namespace
}  // namespace troupe::test
