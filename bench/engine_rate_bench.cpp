// `troupe bench engine --request-rate R --num-prompts N ...`: the serving workload of `troupe bench
// serve` (same prompts, same Poisson arrival times for the same --seed) fed straight into one
// engine in this process, with no HTTP, router or actors. Beside `bench serve` against a cluster it
// gives the cluster's own overhead per request. Same report (table or --json) as `bench serve`.
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/benchmarks.hpp"
#include "bench/serve_report.hpp"
#include "bench/serve_workload.hpp"
#include "engine/cpu_backend.hpp"
#include "engine/llm_engine.hpp"

namespace troupe::bench {

int run_rate_bench(const rate_options& o) {
  double rate = 0;
  if (!parse_rate(o.request_rate, rate))
    return std::fprintf(stderr, "error: --request-rate '%s': give a rate > 0 or inf\n", o.request_rate.c_str()), 2;
  if (o.num_prompts < 1) return std::fprintf(stderr, "error: --num-prompts must be >= 1\n"), 2;
  if (o.prompt_len < 1 || o.gen < 1) return std::fprintf(stderr, "error: --prompt-len and --gen must be >= 1\n"), 2;
  int exit_code = 0;
  const auto m = load_bench_model(o.model, o.no_mmap, o.prompt_len, o.gen, exit_code);
  if (!m) return exit_code;
  auto be = engine::make_cpu_backend(o.threads);
  auto fwd = engine::llama_forward::create(m, *be, o.max_batched_tokens);
  if (!fwd) return std::fprintf(stderr, "error: %s\n", fwd.message().c_str()), 1;
  engine::engine_config cfg;  // the defaults a worker node runs with
  cfg.max_batched_tokens = o.max_batched_tokens;
  cfg.model_revision = o.model;
  auto eng = engine::llm_engine::create(**fwd, cfg, {});
  if (!eng) return std::fprintf(stderr, "error: %s\n", eng.message().c_str()), 1;
  engine::llm_engine& e = **eng;

  // bench serve's default --vocab is 1000: the same ids when the model has at least that many.
  const int64_t vocab = std::min<int64_t>(1000, m->config.vocab_size);
  const auto prompts = token_prompts(o.num_prompts, o.prompt_len, 0, vocab, o.seed);
  const auto arrivals = poisson_arrivals(o.num_prompts, rate, o.seed);
  std::vector<request_result> results(size_t(o.num_prompts));
  std::vector<int64_t> index_of;  // engine id - 1 -> request index (ids count from 1)

  using clock = std::chrono::steady_clock;
  const auto start = clock::now();
  const auto since = [&start]() { return std::chrono::duration<double>(clock::now() - start).count(); };
  size_t next = 0;
  while (next < prompts.size() || e.has_unfinished()) {
    for (; next < prompts.size() && arrivals[next] <= since(); ++next) {
      request r;
      r.prompt.assign(prompts[next].begin(), prompts[next].end());
      r.max_tokens = int32_t(o.gen);
      r.sampling.temperature = 0;
      r.stop.ignore_eos = true;
      auto id = e.add_request(std::move(r));
      if (!id) return std::fprintf(stderr, "error: request %zu: %s\n", next, id.message().c_str()), 1;
      if (size_t(*id) > index_of.size()) index_of.resize(size_t(*id));
      index_of[size_t(*id - 1)] = int64_t(next);
      results[next].start_s = arrivals[next];  // timed from the scheduled arrival, as bench serve does
      results[next].prompt_tokens = o.prompt_len;
    }
    if (!e.has_unfinished()) {
      std::this_thread::sleep_until(start + std::chrono::duration_cast<clock::duration>(
                                                std::chrono::duration<double>(arrivals[next])));
      continue;
    }
    for (const auto& out : e.step()) {
      auto& r = results[size_t(index_of[size_t(out.request - 1)])];
      const double t = since() - r.start_s;
      if (!out.tokens.empty()) {
        r.chunk_times_s.push_back(t);
        r.output_tokens += int64_t(out.tokens.size());
      }
      if (out.finish) {
        r.success = *out.finish == finish_reason::length;
        if (!r.success) r.error = out.error.empty() ? to_string(*out.finish) : out.error;
        r.e2e_s = t;
      }
    }
  }
  const auto report = make_report(results, since());
  if (o.json) {
    const std::string j = report_json(report);
    std::printf("%s\n", j.c_str());
  } else {
    std::printf("%s", report_table(report, "troupe bench engine: " + std::to_string(o.num_prompts) +
                                               " requests into the engine in-process, rate " + o.request_rate +
                                               "/s, input " + std::to_string(o.prompt_len) + " tokens, output " +
                                               std::to_string(o.gen) + " tokens")
                          .c_str());
  }
  return report.failed ? 1 : 0;
}

}  // namespace troupe::bench
