// Tensor-parallel shard groups in a running cluster: ranks as threads of one worker (`troupe up
// --tp N`) and as separate `troupe node --rank R` processes meeting through the router, serving the
// tokens and logprobs of tp = 1; a rank killed or hung mid-stream fails its group's requests
// within seconds and the router routes around the group; bad rank flags get clear errors.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <thread>

#include "tests/cluster/cluster_fixture.hpp"

namespace troupe::test {
namespace {

using namespace std::chrono_literals;

// 8 heads, with 4 kv heads (split by tp 2 and 4) or 2 (replicated at tp 4).
std::string tp_model(int64_t kv_heads) {
  const std::string name = "tp-model-kv" + std::to_string(kv_heads);
  const std::string dir = process_tmp() + "/" + name;
  if (!std::filesystem::exists(dir + "/config.json")) {
    engine::tiny_model_spec spec;
    spec.kv_heads = kv_heads;
    spec.max_position = 2048;
    spec.seed = 70 + uint64_t(kv_heads);
    auto ok = engine::make_tiny_model(spec, dir);
    EXPECT_TRUE(ok) << ok.message();
  }
  return dir;
}

std::string model_name(const std::string& dir) { return std::filesystem::path(dir).filename().string(); }

const std::vector<std::string> prompts = {"The actors of a distributed system", "Hello there", "Once upon a time"};

// A greedy completion's text and its tokens' logprobs.
struct greedy {
  std::string text;
  std::vector<double> logprobs;
  std::string error;
};

greedy reference(const std::string& model, const std::string& prompt) {
  const auto out = run_capture(std::string(TROUPE_BIN) + " generate --model " + model + " --prompt '" + prompt +
                               "' --max-tokens 16 --temperature 0 --logprobs 1 --json 2>&1");
  greedy g;
  simdjson::dom::parser parser;
  auto doc = parser.parse(out);
  if (doc.error()) return greedy{"", {}, "generate: " + out};
  std::string_view t;
  if (doc["text"].get(t)) return greedy{"", {}, "generate: " + out};
  g.text = std::string(t);
  simdjson::dom::array lps;
  if (!doc["logprobs"].get(lps))
    for (auto e : lps) g.logprobs.push_back(double(e["logprob"].get_double().value_unsafe()));
  return g;
}

greedy served(uint16_t port, const std::string& model, const std::string& prompt) {
  auto r = http_request(port, "POST", "/v1/completions",
                        "{\"model\":\"" + model_name(model) + "\",\"prompt\":\"" + prompt +
                            "\",\"max_tokens\":16,\"temperature\":0,\"logprobs\":1}");
  greedy g;
  if (r.status != 200) return greedy{"", {}, std::to_string(r.status) + " " + r.body + r.error};
  simdjson::dom::parser parser;
  auto doc = parser.parse(r.body);
  std::string_view t;
  if (doc.error() || doc["choices"].at(0)["text"].get(t)) return greedy{"", {}, "bad body: " + r.body};
  g.text = std::string(t);
  simdjson::dom::array lps;
  if (!doc["choices"].at(0)["logprobs"]["token_logprobs"].get(lps))
    for (auto e : lps) g.logprobs.push_back(e.get_double().value_unsafe());
  return g;
}

// The cluster's greedy texts and logprobs equal tp = 1's (`troupe generate`), logprobs within 1e-4
// relative (the shard's partial sums are added in another order than the whole model's dot products).
void expect_serves_like_tp1(uint16_t port, const std::string& model) {
  for (const auto& p : prompts) {
    const greedy want = reference(model, p);
    ASSERT_EQ(want.error, "");
    const greedy got = served(port, model, p);
    ASSERT_EQ(got.error, "") << p;
    EXPECT_EQ(got.text, want.text) << p;
    ASSERT_EQ(got.logprobs.size(), want.logprobs.size()) << p;
    for (size_t i = 0; i < want.logprobs.size(); ++i)
      EXPECT_LE(std::abs(got.logprobs[i] - want.logprobs[i]), 1e-4 * std::max(1.0, std::abs(want.logprobs[i])))
          << p << " token " << i << ": " << got.logprobs[i] << " vs " << want.logprobs[i];
  }
}

// A router node alone; shard groups join it from other processes.
local_cluster router_node(const std::string& model) {
  return local_cluster(0, {"node", "--roles", "router", "--model", model, "--listen", "127.0.0.1:0", "--http",
                           "127.0.0.1:0", "--no-cache", "--cluster-certs", node_certs("router")});
}

// A shard group of `tp` rank processes: the leader (rank 0) and ranks 1 .. tp-1, joined to `router`.
struct process_group {
  std::vector<pid_t> pids;  // by rank
  std::vector<std::string> logs;
  process_group(const local_cluster& router, const std::string& model, const std::string& group, int tp,
                std::vector<std::string> extra = {}) {
    for (int rank = 0; rank < tp; ++rank) {
      std::vector<std::string> args = {"node", "--roles", "worker", "--model", model, "--join",
                                       "127.0.0.1:" + std::to_string(router.cluster_port()), "--group", group,
                                       "--tp", std::to_string(tp), "--rank", std::to_string(rank), "--threads", "1",
                                       "--kv-memory", std::to_string(32 << 20), "--cluster-certs", node_certs()};
      args.insert(args.end(), extra.begin(), extra.end());
      logs.push_back(process_tmp() + "/" + group + "-rank" + std::to_string(rank) + ".log");
      pids.push_back(spawn_troupe(args, logs.back()));
    }
  }
  [[nodiscard]] std::string all_logs() const {
    std::string s;
    for (const auto& l : logs) s += "--- " + l + "\n" + read_file(l);
    return s;
  }
  // Exit status of `pid` once it exits within `within`; -1 if it is still running.
  static int exit_code(pid_t pid, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    int status = 0;
    do {
      if (::waitpid(pid, &status, WNOHANG) == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      std::this_thread::sleep_for(20ms);
    } while (std::chrono::steady_clock::now() < deadline);
    return -1;
  }
  ~process_group() {
    for (pid_t p : pids) (void)stop_process(p, std::chrono::seconds(10));
  }
};

bool wait_for_groups(const local_cluster& c, int groups, std::chrono::seconds within) {
  const auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (c.live_groups() == groups) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

TEST(tensor_parallel, up_with_thread_ranks_serves_the_tokens_and_logprobs_of_tp1) {
  const std::string model = tp_model(4);
  local_cluster cluster(model, 1, {"--tp", "2", "--no-cache"});
  ASSERT_NE(cluster.port(), 0);
  expect_serves_like_tp1(cluster.port(), model);
  EXPECT_TRUE(cluster.log_has("tp 2")) << cluster.log();
}

class rank_processes : public ::testing::TestWithParam<std::pair<int64_t, int>> {};

TEST_P(rank_processes, serve_the_tokens_and_logprobs_of_tp1) {
  const auto [kv_heads, tp] = GetParam();
  const std::string model = tp_model(kv_heads);
  local_cluster router = router_node(model);
  ASSERT_NE(router.cluster_port(), 0);
  process_group group(router, model, "procs" + std::to_string(tp), tp);
  ASSERT_TRUE(wait_for_groups(router, 1, 60s)) << group.all_logs();
  expect_serves_like_tp1(router.port(), model);
  // Stopping the leader stops its ranks cleanly (it sends them stop).
  ASSERT_EQ(stop_process(group.pids[0], 10s), 0) << group.all_logs();
  for (int r = 1; r < tp; ++r)
    EXPECT_EQ(process_group::exit_code(group.pids[size_t(r)], 10s), 0) << "rank " << r << "\n" << group.all_logs();
  group.pids.resize(0);
}

// tp 2 splits 4 kv heads; tp 4 replicates 2 kv heads (each rank holds one of the two).
INSTANTIATE_TEST_SUITE_P(gqa, rank_processes, ::testing::Values(std::pair<int64_t, int>{4, 2}, std::pair<int64_t, int>{2, 4}),
                         [](const auto& info) {
                           return "kv" + std::to_string(info.param.first) + "_tp" + std::to_string(info.param.second);
                         });

// Streams a long greedy completion; returns the parsed stream.
struct stream_result {
  bool started = false, done = false;
  std::string error;
  std::chrono::steady_clock::time_point ended;
};

stream_result long_stream(uint16_t port, const std::string& model) {
  stream_result s;
  auto r = http_request(port, "POST", "/v1/completions",
                        "{\"model\":\"" + model_name(model) + "\",\"prompt\":\"A very long story\",\"max_tokens\":1900,"
                        "\"temperature\":0,\"ignore_eos\":true,\"stream\":true}");
  s.ended = std::chrono::steady_clock::now();
  for (const auto& ev : sse_events(r.body)) {
    if (ev == "[DONE]") s.done = true;
    else if (ev.find("\"error\"") != std::string::npos) s.error = ev;
    else if (ev.find("\"text\"") != std::string::npos) s.started = true;
  }
  return s;
}

// Rank 1 of a tp 2 group is SIGKILLed (or SIGSTOPped) while the group streams; a tp 1 group runs beside
// it: the group fails within seconds and the stream is resumed on the tp 1 group.
void expect_rank_failure_is_routed_around(int signal) {
  const std::string model = tp_model(4);
  local_cluster router = router_node(model);
  ASSERT_NE(router.cluster_port(), 0);
  process_group group(router, model, "doomed", 2, {"--rank-timeout", "2"});
  ASSERT_TRUE(wait_for_groups(router, 1, 60s)) << group.all_logs();
  // The stream starts on the tp 2 group (the only one).
  stream_result s;
  std::thread client([&s, &router, &model]() { s = long_stream(router.port(), model); });
  std::this_thread::sleep_for(700ms);
  // A tp 1 group joins, then rank 1 fails.
  const pid_t single = spawn_troupe({"node", "--roles", "worker", "--model", model, "--join",
                                     "127.0.0.1:" + std::to_string(router.cluster_port()), "--threads", "1",
                                     "--kv-memory", std::to_string(32 << 20), "--cluster-certs", node_certs()},
                                    process_tmp() + "/single.log");
  ASSERT_TRUE(wait_for_groups(router, 2, 60s)) << read_file(process_tmp() + "/single.log");
  const auto failed_at = std::chrono::steady_clock::now();
  ::kill(group.pids[1], signal);
  // The group fails within seconds: the router drops it.
  const auto give_up = failed_at + 20s;
  while (router.live_groups() != 1 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(20ms);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - failed_at).count();
  EXPECT_LT(seconds, signal == SIGKILL ? 3.0 : 6.0) << "the group took too long to fail";
  // The stream goes on: the router resumes it on the tp 1 group after the tokens already sent.
  client.join();
  EXPECT_TRUE(s.started);
  EXPECT_TRUE(s.done) << "the stream did not end with [DONE]";
  EXPECT_EQ(s.error, "") << "the stream was not resumed";
  EXPECT_NE(router.log().find("resumed on"), std::string::npos) << router.log();
  // The leader leaves (exit 4) and the router drops the group; the next requests go to the tp 1 group.
  EXPECT_EQ(process_group::exit_code(group.pids[0], 10s), 4) << group.all_logs();
  EXPECT_NE(read_file(group.logs[0]).find("shard group doomed stops"), std::string::npos) << group.all_logs();
  EXPECT_TRUE(wait_for_groups(router, 1, 10s));
  const greedy after = served(router.port(), model, prompts[0]);
  EXPECT_EQ(after.error, "");
  EXPECT_EQ(after.text, reference(model, prompts[0]).text);
  if (signal == SIGSTOP) {
    // Woken up, the hung rank finds its group gone and exits with the group's error.
    ::kill(group.pids[1], SIGCONT);
    EXPECT_EQ(process_group::exit_code(group.pids[1], 10s), 4) << group.all_logs();
  }
  group.pids = {};
  (void)stop_process(single, 10s);
}

TEST(tensor_parallel, a_rank_killed_mid_stream_fails_its_group_within_seconds_and_is_routed_around) {
  expect_rank_failure_is_routed_around(SIGKILL);
}

TEST(tensor_parallel, a_hung_rank_fails_its_group_within_the_rank_timeout) {
  expect_rank_failure_is_routed_around(SIGSTOP);
}

TEST(tensor_parallel, rank_flags_are_checked_with_clear_errors) {
  const std::string certs = " --cluster-certs " + node_certs() + " ";
  const std::string bin = std::string(TROUPE_BIN) + " node --roles worker --model " + tp_model(4) +
                          " --join 127.0.0.1:1 --join-timeout 1" + certs;
  EXPECT_NE(run_capture(bin + "--group g --tp 2 --rank 2 2>&1").find("--rank 2 is not a rank of --tp 2"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + "--tp 2 --rank 1 2>&1").find("--rank needs --group"), std::string::npos);
  EXPECT_NE(run_capture(bin + "--group g --rank 1 2>&1").find("needs --tp 2 or more"), std::string::npos);
  EXPECT_NE(run_capture(std::string(TROUPE_BIN) + " node --roles router,worker --model " + tp_model(4) +
                        " --group g --tp 2 --rank 0" + certs + "2>&1")
                .find("--rank belongs to worker-only nodes"),
            std::string::npos);
  EXPECT_NE(run_capture(bin + "--group g --tp 2 --rank-timeout 0 2>&1").find("--rank-timeout"), std::string::npos);
  // 8 heads do not split over 3 ranks: the error names the field and tp.
  const auto three = run_capture(std::string(TROUPE_BIN) + " node --roles router,worker --model " + tp_model(4) +
                                 " --listen 127.0.0.1:0 --http 127.0.0.1:0 --threads 1 --tp 3" + certs + "2>&1");
  EXPECT_NE(three.find("num_attention_heads"), std::string::npos) << three;
  EXPECT_NE(three.find("divisible"), std::string::npos) << three;
}

TEST(tensor_parallel, a_rank_whose_group_never_forms_gives_up_naming_the_group) {
  const std::string model = tp_model(4);
  local_cluster router = router_node(model);
  ASSERT_NE(router.cluster_port(), 0);
  const auto out = run_capture(std::string(TROUPE_BIN) + " node --roles worker --model " + model + " --join 127.0.0.1:" +
                               std::to_string(router.cluster_port()) +
                               " --group nobody --tp 2 --rank 1 --join-timeout 1 --cluster-certs " + node_certs() + " 2>&1");
  EXPECT_NE(out.find("--group nobody"), std::string::npos) << out;
  EXPECT_NE(out.find("did not publish"), std::string::npos) << out;
}

}  // namespace
}  // namespace troupe::test
