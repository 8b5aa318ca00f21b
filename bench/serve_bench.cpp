// `troupe bench serve --url http://HOST:PORT ...`: an open-loop load generator for OpenAI-compatible
// servers (like vLLM's benchmark_serving.py). It sends --num-prompts streaming requests as a Poisson
// process of --request-rate per second (or all at once for `inf`), at most --max-concurrency in
// flight, and reports throughputs and TTFT/TPOT/ITL/E2E percentiles (serve_report.hpp).
//
// Every request asks for exactly --output-len tokens (max_tokens plus vLLM's ignore_eos, greedy).
// Completions prompts are token-id arrays of exactly --input-len ids, drawn uniformly from
// [V/10, V) (V = --vocab; the low tenth is skipped so that special tokens, which tokenizers put
// first, are not drawn). Chat prompts are --input-len words from a fixed list of common short English
// words, so their token count is only approximate (about one token per word plus the chat
// template): the report counts input tokens from the server's usage when it sends them. The first
// --shared-prefix ids (or words) are the same in every request. Prompts and arrivals are
// reproducible for a given --seed with the same build.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench/benchmarks.hpp"
#include "bench/serve_client.hpp"
#include "bench/serve_plot.hpp"
#include "bench/serve_report.hpp"
#include "bench/serve_workload.hpp"
#include "common/json_output.hpp"

namespace troupe::bench {

namespace {

struct serve_options {
  std::string url;
  std::string endpoint = "completions";
  std::string model;
  std::string api_key;
  int64_t num_prompts = 0;
  std::string request_rate;  // a number or "inf"
  std::string rate_schedule; // "0:2,60:20,120:2" instead of --request-rate
  int64_t max_concurrency = 0;
  int64_t input_len = 0;
  int64_t output_len = 0;
  int64_t shared_prefix = 0;
  uint64_t seed = 0;
  int64_t vocab = 1000;
  double timeout_s = 0;
  std::vector<std::string> goodput;  // "ttft:MS", "tpot:MS", "e2e:MS"
  std::string plot;
  bool json = false;
};

// Short, common words that most BPE vocabularies hold as one token each (with a leading space).
constexpr const char* words[] = {
    "the",   "of",    "and",   "to",    "in",    "is",    "was",   "for",   "on",    "are",   "with",  "as",
    "his",   "they",  "be",    "at",    "one",   "have",  "this",  "from",  "or",    "had",   "by",    "word",
    "but",   "what",  "some",  "we",    "can",   "out",   "other", "were",  "all",   "there", "when",  "up",
    "use",   "your",  "how",   "said",  "an",    "each",  "she",   "which", "do",    "their", "time",  "if",
    "will",  "way",   "about", "many",  "then",  "them",  "write", "would", "like",  "so",    "these", "her",
    "long",  "make",  "thing", "see",   "him",   "two",   "has",   "look",  "more",  "day",   "could", "go",
    "come",  "did",   "number", "sound", "no",   "most",  "people", "my",   "over",  "know",  "water", "than",
    "call",  "first", "who",   "may",   "down",  "side",  "been",  "now",   "find",  "any",   "new",   "work",
    "part",  "take",  "get",   "place", "made",  "live",  "where", "after", "back",  "little", "only", "round",
    "man",   "year",  "came",  "show",  "every", "good",  "me",    "give",  "our",   "under", "name",  "very"};
constexpr size_t word_count = sizeof(words) / sizeof(words[0]);

// --goodput ttft:MS tpot:MS e2e:MS (any of them, as vLLM's benchmark takes them).
[[nodiscard]] bool parse_slo(const std::vector<std::string>& items, serve_slo& slo) {
  for (const std::string& item : items) {
    const size_t colon = item.find(':');
    if (colon == std::string::npos) return false;
    const std::string key = item.substr(0, colon), value = item.substr(colon + 1);
    char* end = nullptr;
    const double ms = std::strtod(value.c_str(), &end);
    if (value.empty() || end != value.c_str() + value.size() || !(ms > 0) || !std::isfinite(ms)) return false;
    double* field = key == "ttft" ? &slo.ttft_ms : key == "tpot" ? &slo.tpot_ms : key == "e2e" ? &slo.e2e_ms : nullptr;
    if (!field) return false;
    *field = ms;
  }
  return true;
}

std::string request_tail(const serve_options& o) {
  return ",\"max_tokens\":" + std::to_string(o.output_len) +
         ",\"temperature\":0,\"ignore_eos\":true,\"stream\":true,\"stream_options\":{\"include_usage\":true}}";
}

std::vector<std::string> completion_bodies(const serve_options& o, const std::string& model) {
  std::vector<std::string> bodies;
  const std::string head = "{\"model\":" + json_string(model) + ",\"prompt\":", tail = request_tail(o);
  for (const auto& ids : token_prompts(o.num_prompts, o.input_len, o.shared_prefix, o.vocab, o.seed))
    bodies.push_back(head + json_int_array(ids) + tail);
  return bodies;
}

std::vector<std::string> chat_bodies(const serve_options& o, const std::string& model) {
  std::uniform_int_distribution<size_t> pick(0, word_count - 1);
  auto prefix_rng = stream_rng(o.seed, 2), rest_rng = stream_rng(o.seed, 3);
  std::string prefix;
  for (int64_t i = 0; i < o.shared_prefix; ++i) prefix += std::string(i ? " " : "") + words[pick(prefix_rng)];
  std::vector<std::string> bodies;
  const std::string head = "{\"model\":" + json_string(model) + ",\"messages\":[{\"role\":\"user\",\"content\":";
  const std::string tail = "}]" + request_tail(o);
  for (int64_t r = 0; r < o.num_prompts; ++r) {
    std::string text = prefix;
    for (int64_t i = o.shared_prefix; i < o.input_len; ++i) text += std::string(i ? " " : "") + words[pick(rest_rng)];
    bodies.push_back(head + json_string(text) + tail);
  }
  return bodies;
}

// A one-line bar on stderr, redrawn in place at most 10 times a second; only on a terminal, so that
// logs and --json on stdout stay clean.
class progress_bar {
 public:
  progress_bar() : enabled_(isatty(STDERR_FILENO) != 0), start_(std::chrono::steady_clock::now()) {}

  void update(const load_progress& p) {
    if (!enabled_) return;
    const auto now = std::chrono::steady_clock::now();
    const bool last = p.completed + p.failed == p.total;
    if (!last && now - drawn_ < std::chrono::milliseconds(100)) return;
    drawn_ = now;
    constexpr int width = 30;
    const int filled = p.total > 0 ? int(width * (p.completed + p.failed) / p.total) : 0;
    std::fprintf(stderr, "\r[%s%s] %lld/%lld done, %lld failed, %lld in flight, %.1f s ",
                 std::string(size_t(filled), '#').c_str(), std::string(size_t(width - filled), '.').c_str(),
                 (long long)(p.completed + p.failed), (long long)p.total, (long long)p.failed,
                 (long long)(p.sent - p.completed - p.failed),
                 std::chrono::duration<double>(now - start_).count());
    if (last) std::fprintf(stderr, "\n");
    std::fflush(stderr);
  }

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_, drawn_;
};

int run_serve_bench(serve_options o) {
  double rate = 0;
  if (o.num_prompts < 1 || o.num_prompts > 10'000'000)
    return std::fprintf(stderr, "error: --num-prompts must be in [1, 10000000]\n"), 2;
  std::vector<rate_step> schedule;
  if (o.request_rate.empty() == o.rate_schedule.empty())
    return std::fprintf(stderr, "error: give one of --request-rate and --rate-schedule\n"), 2;
  if (!o.rate_schedule.empty()) {
    std::string why;
    if (!parse_rate_schedule(o.rate_schedule, schedule, why))
      return std::fprintf(stderr, "error: --rate-schedule: %s\n", why.c_str()), 2;
  } else if (!parse_rate(o.request_rate, rate)) {
    return std::fprintf(stderr, "error: --request-rate must be a number > 0 (requests/s) or inf, not '%s'\n",
                        o.request_rate.c_str()), 2;
  }
  if (o.max_concurrency < 0) return std::fprintf(stderr, "error: --max-concurrency must be >= 0 (0: no cap)\n"), 2;
  if (o.input_len < 1 || o.output_len < 1)
    return std::fprintf(stderr, "error: --input-len and --output-len must be >= 1\n"), 2;
  if (o.shared_prefix < 0 || o.shared_prefix > o.input_len)
    return std::fprintf(stderr, "error: --shared-prefix must be in [0, --input-len]\n"), 2;
  if (o.vocab < 2) return std::fprintf(stderr, "error: --vocab must be >= 2\n"), 2;
  if (!(o.timeout_s >= 0)) return std::fprintf(stderr, "error: --timeout must be >= 0 (0: none)\n"), 2;
  serve_slo slo;
  if (!parse_slo(o.goodput, slo))
    return std::fprintf(stderr, "error: --goodput takes ttft:MS, tpot:MS and/or e2e:MS with MS > 0\n"), 2;
  if (!o.plot.empty() && !std::ofstream(o.plot))  // fail now, not after a long run
    return std::fprintf(stderr, "error: --plot: cannot write %s\n", o.plot.c_str()), 2;
  if (o.api_key.empty())
    if (const char* key = std::getenv("OPENAI_API_KEY")) o.api_key = key;
  const endpoint_kind endpoint = o.endpoint == "chat" ? endpoint_kind::chat : endpoint_kind::completions;

  auto client = serve_client::connect(o.url, o.api_key, 10);
  if (!client) return std::fprintf(stderr, "error: %s\n", client.message().c_str()), 1;
  serve_client& c = **client;
  std::string model = o.model;
  if (model.empty()) {
    auto ids = c.list_models(30);
    if (!ids) return std::fprintf(stderr, "error: %s (or pass --model)\n", ids.message().c_str()), 1;
    if (ids->empty()) return std::fprintf(stderr, "error: %s lists no models; pass --model\n", o.url.c_str()), 1;
    model = ids->front();
  }

  load_plan plan;
  plan.endpoint = endpoint;
  plan.bodies = endpoint == endpoint_kind::chat ? chat_bodies(o, model) : completion_bodies(o, model);
  plan.arrivals_s = schedule.empty() ? poisson_arrivals(o.num_prompts, rate, o.seed)
                                     : scheduled_arrivals(o.num_prompts, schedule, o.seed);
  plan.bodies.resize(plan.arrivals_s.size());  // a schedule that ends early sends fewer
  plan.prompt_tokens.assign(plan.arrivals_s.size(), o.input_len);
  plan.max_concurrency = o.max_concurrency;
  plan.timeout_s = o.timeout_s;

  progress_bar bar;
  double duration_s = 0;
  // The server's replicas over the run, from its /metrics each second (troupe's autoscaler gauge),
  // on a thread and connection of their own.
  std::vector<replica_sample> replicas;
  std::atomic<bool> running{true};
  std::thread sampler([&replicas, &running, &o]() {
    auto mc = serve_client::connect(o.url, o.api_key, 5);
    if (!mc) return;
    const auto start = std::chrono::steady_clock::now();
    while (running.load()) {
      const auto at = std::chrono::steady_clock::now();
      if (auto text = (*mc)->get_text("/metrics", 2)) {
        const std::string name = "\ntroupe_autoscaler_actual_replicas ";
        if (auto pos = text->find(name); pos != std::string::npos)
          replicas.push_back({std::chrono::duration<double>(at - start).count(), std::atof(text->c_str() + pos + name.size())});
      }
      while (running.load() && std::chrono::steady_clock::now() - at < std::chrono::seconds(1))
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
  });
  const std::vector<request_result> results =
      c.run(plan, [&bar](const load_progress& p) { bar.update(p); }, duration_s);
  running = false;
  sampler.join();
  const serve_report report = make_report(results, duration_s, slo);

  std::string title = "troupe bench serve: " + std::to_string(o.num_prompts) + " requests to " + o.url +
                      c.path_of(endpoint) + " (model " + model + "), rate " +
                      (!schedule.empty() ? "schedule " + o.rate_schedule : std::isinf(rate) ? std::string("inf") : json_number(rate)) +
                      "/s, max concurrency " +
                      (o.max_concurrency > 0 ? std::to_string(o.max_concurrency) : std::string("none")) +
                      ", input " + std::to_string(o.input_len) + (endpoint == endpoint_kind::chat ? " words" : " tokens") +
                      " (shared prefix " + std::to_string(o.shared_prefix) + "), output " +
                      std::to_string(o.output_len) + " tokens";
  std::string out = o.json ? report_json(report) : report_table(report, title);
  if (o.json && !replicas.empty()) {  // the series, as [[seconds, replicas], ...]
    std::string series = ",\"replicas\":[";
    for (size_t i = 0; i < replicas.size(); ++i)
      series += (i ? ",[" : "[") + json_number(replicas[i].t_s) + "," + json_number(replicas[i].replicas) + "]";
    out.insert(out.size() - 1, series + "]");
  } else if (!o.json && !replicas.empty()) {
    double least = replicas.front().replicas, most = least;
    for (const auto& r : replicas) least = std::min(least, r.replicas), most = std::max(most, r.replicas);
    out += "Replicas (server /metrics): " + json_number(least) + " to " + json_number(most) + " over the run\n";
  }
  if (o.json) out += "\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  std::fflush(stdout);
  if (!o.plot.empty()) {
    std::ofstream f(o.plot, std::ios::binary);
    f << render_svg(results, title, replicas);
    if (!f) return std::fprintf(stderr, "error: --plot: cannot write %s\n", o.plot.c_str()), 1;
  }
  if (report.completed == 0) return std::fprintf(stderr, "error: every request failed\n"), 1;
  return 0;
}

}  // namespace

command_runner add_serve_bench(CLI::App& bench) {
  auto o = std::make_shared<serve_options>();
  CLI::App* s = bench.add_subcommand(
      "serve", "open-loop load (Poisson arrivals) against an OpenAI-compatible server: throughput and "
               "TTFT/TPOT/ITL/E2E percentiles");
  s->add_option("--url", o->url, "the server's base URL, http://HOST[:PORT][/PREFIX]")->required();
  s->add_option("--endpoint", o->endpoint, "completions (token-id prompts) or chat (word prompts)")
      ->check(CLI::IsMember({"completions", "chat"}))
      ->capture_default_str();
  s->add_option("--model", o->model, "model name to send (default: the first of GET /v1/models)");
  s->add_option("--api-key", o->api_key, "bearer token (default: $OPENAI_API_KEY)");
  s->add_option("--num-prompts", o->num_prompts, "requests to send")->required();
  s->add_option("--request-rate", o->request_rate, "mean requests/s of the Poisson arrivals, or inf (all at once)");
  s->add_option("--rate-schedule", o->rate_schedule,
                "instead of --request-rate: SECONDS:RATE pieces, e.g. 0:2,60:20,120:2 (a last rate 0 ends the arrivals)");
  s->add_option("--max-concurrency", o->max_concurrency, "most requests in flight; later arrivals wait (0: no cap)")
      ->capture_default_str();
  s->add_option("--input-len", o->input_len, "prompt tokens (chat: words, approximately tokens)")->required();
  s->add_option("--output-len", o->output_len, "tokens each request generates (max_tokens with ignore_eos)")
      ->required();
  s->add_option("--shared-prefix", o->shared_prefix, "leading prompt tokens (chat: words) every request shares")
      ->capture_default_str();
  s->add_option("--seed", o->seed, "seed of the prompts and the arrivals")->capture_default_str();
  s->add_option("--vocab", o->vocab, "completions: token ids are drawn from [vocab/10, vocab)")->capture_default_str();
  s->add_option("--timeout", o->timeout_s, "seconds one request may take before it counts as failed (0: none)")
      ->capture_default_str();
  s->add_option("--goodput", o->goodput, "SLOs for goodput, e.g. --goodput ttft:500 tpot:50 (ms; any of ttft, tpot, e2e)")
      ->delimiter(',');
  s->add_flag("--json", o->json, "print one JSON object instead of the table");
  s->add_option("--plot", o->plot, "write latency CDFs and throughput over time to this SVG file");
  return [o]() { return run_serve_bench(*o); };
}

}  // namespace troupe::bench
