// `troupe bench engine --concurrency 1,8,32 ...`: the continuous-batching engine under load. For
// each concurrency C, C requests of --prompt-len random tokens (sharing their first --shared-prefix
// tokens, when given) each generate --gen tokens (ignoring eos, greedy); reports aggregate output
// tokens/s, TTFT and TPOT percentiles and the peak share of the KV cache in use. With a shared
// prefix, the first request runs to its first token before the others arrive, so that they find
// its blocks in the prefix cache; its TTFT is reported apart ("first_ttft_ms").
// Each result also gives the arithmetic rate of the forward passes ("compute_gflops") and its ratio
// to the peak of the instruction the weights run on, measured in the same run
// ("compute_peak_fraction"): the roofline of a run that batching has made compute-bound.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <random>

#include "bench/benchmarks.hpp"
#include "bench/serve_report.hpp"
#include "common/json_output.hpp"
#include "engine/cpu_backend.hpp"
#include "engine/kernels/cpu/kernels.hpp"
#include "engine/llm_engine.hpp"

namespace troupe::bench {

namespace {

using clock_type = std::chrono::steady_clock;

struct percentiles {
  double p50 = 0, p90 = 0, p99 = 0;
};

// Interpolated percentiles, the same as `bench serve` and `bench engine --request-rate` report.
percentiles percentiles_of(std::vector<double> v) {
  if (v.empty()) return {};
  std::sort(v.begin(), v.end());
  return {percentile(v, 0.5), percentile(v, 0.9), percentile(v, 0.99)};
}

std::string json_percentiles(const percentiles& p) {
  return "{\"p50\":" + json_number(p.p50) + ",\"p90\":" + json_number(p.p90) + ",\"p99\":" + json_number(p.p99) + "}";
}

// The flops of one request's forward passes: every prompt token and every generated token but the
// last (which is never fed back) through the layers' matrices (2 per weight) and attention (QK^T and
// PV: 4 * q_dim per attended position per layer), and the LM head once per generated token. Norms,
// rotary embedding and the gate's activation are left out (under 1% for Llama shapes).
double request_flops(const engine::model_config& c, int64_t prompt_len, int64_t gen) {
  const double body = 2.0 * double(c.n_layers) * double(c.dim) * double(2 * c.q_dim() + 2 * c.kv_dim() + 3 * c.ffn_dim);
  const double fed = double(prompt_len + gen - 1);
  const double attended = fed * (fed + 1) / 2;  // positions 0 .. fed - 1, each attending pos + 1 keys
  return body * fed + 4.0 * double(c.n_layers) * double(c.q_dim()) * attended +
         2.0 * double(c.vocab_size) * double(c.dim) * double(gen);
}

struct run_result {
  int64_t concurrency = 0;
  double output_tokens_per_s = 0;
  double compute_gflops = 0;  // 0: not counted (prefix-cache hits or preemptions changed the work)
  percentiles ttft_ms, tpot_ms;
  double first_ttft_ms = 0;
  double kv_used_fraction = 0;
  double prefix_hit_rate = 0;
  int64_t preemptions = 0;
};

}  // namespace

int run_serving_bench(const serving_options& o) {
  if (o.prompt_len < 1 || o.gen < 1) return std::fprintf(stderr, "error: --prompt-len and --gen must be >= 1\n"), 2;
  if (o.shared_prefix < 0 || o.shared_prefix > o.prompt_len)
    return std::fprintf(stderr, "error: --shared-prefix must be in [0, --prompt-len]\n"), 2;
  for (const int64_t c : o.concurrency) {
    if (c < 1 || c > 4096) return std::fprintf(stderr, "error: --concurrency values must be in [1, 4096]\n"), 2;
  }
  int exit_code = 0;
  const auto m = load_bench_model(o.model, o.no_mmap, o.prompt_len, o.gen, exit_code);
  if (!m) return exit_code;
  const engine::model_config& c = m->config;
  // The peak the weights' arithmetic runs at: vdpbf16ps for bf16 weights where the path has it,
  // f32 FMAs for f32 and f16 weights; none is measured for q8_0's int8 dot products.
  double peak_gflops = 0;
  {
    engine::cpu::thread_pool probe_pool(o.threads);
    const engine::dtype t = m->weights.layers.empty() ? engine::dtype::f32 : m->weights.layers.front().wq.type;
    if (t == engine::dtype::bf16) peak_gflops = engine::cpu::measure_bf16_dot_peak(probe_pool);
    if (t == engine::dtype::f32 || t == engine::dtype::f16) peak_gflops = engine::cpu::measure_fma_peak(probe_pool);
  }
  auto be = engine::make_cpu_backend(o.threads);
  auto fwd = engine::llama_forward::create(m, *be, o.max_batched_tokens);
  if (!fwd) return std::fprintf(stderr, "error: %s\n", fwd.message().c_str()), 1;

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(c.vocab_size - 1));
  std::vector<int32_t> prefix(size_t(o.shared_prefix));
  for (auto& t : prefix) t = pick(rng);

  std::vector<run_result> results;
  for (const int64_t conc : o.concurrency) {
    engine::engine_config cfg;
    cfg.max_batched_tokens = o.max_batched_tokens;
    cfg.max_running = int32_t(std::max<int64_t>(conc, 1));
    cfg.model_revision = o.model;
    // Room for every request's whole sequence (no preemption), unless --kv-memory says otherwise.
    const int64_t per_token = c.n_layers * 2 * c.kv_dim() * int64_t(sizeof(float));
    cfg.kv_memory_bytes = o.kv_memory > 0 ? o.kv_memory
                                          : std::max(conc * (o.prompt_len + o.gen + 16), c.max_position + 16) * per_token;
    cfg.kv_memory_fraction = o.kv_memory_fraction;
    auto eng = engine::llm_engine::create(**fwd, cfg, {});
    if (!eng) return std::fprintf(stderr, "error: %s\n", eng.message().c_str()), 1;
    engine::llm_engine& e = **eng;
    if (!o.json)
      std::printf("concurrency %lld: KV cache of %lld tokens\n", (long long)conc, (long long)e.stats().kv_capacity_tokens);

    std::map<int64_t, clock_type::time_point> arrival, first_token, last_token;
    std::map<int64_t, int64_t> generated;
    int32_t peak_blocks = 0;
    const auto submit = [&](int64_t i) -> bool {
      request r;
      r.prompt = prefix;
      while (int64_t(r.prompt.size()) < o.prompt_len) r.prompt.push_back(pick(rng));
      r.max_tokens = int32_t(o.gen);
      r.sampling.temperature = 0;
      r.stop.ignore_eos = true;
      auto id = e.add_request(std::move(r));
      if (!id) {
        std::fprintf(stderr, "error: request %lld: %s\n", (long long)i, id.message().c_str());
        return false;
      }
      arrival[*id] = clock_type::now();
      return true;
    };
    const auto run_steps = [&](bool until_first_token) {
      while (e.has_unfinished()) {
        for (const auto& out : e.step()) {
          const auto now = clock_type::now();
          if (!out.tokens.empty() && !first_token.count(out.request)) first_token[out.request] = now;
          if (!out.tokens.empty()) last_token[out.request] = now;
          generated[out.request] += int64_t(out.tokens.size());
        }
        peak_blocks = std::max(peak_blocks, e.stats().kv_blocks_used);
        if (until_first_token && !first_token.empty()) return;
      }
    };

    const auto start = clock_type::now();
    int64_t submitted = 0;
    if (o.shared_prefix > 0) {  // the first request fills the prefix cache, then the rest arrive
      if (!submit(0)) return 1;
      ++submitted;
      run_steps(true);
    }
    for (; submitted < conc; ++submitted) {
      if (!submit(submitted)) return 1;
    }
    run_steps(false);
    const double wall = std::chrono::duration<double>(clock_type::now() - start).count();

    run_result r;
    r.concurrency = conc;
    int64_t total = 0;
    std::vector<double> ttft, tpot;
    for (const auto& [id, t0] : arrival) {
      total += generated[id];
      if (!first_token.count(id)) continue;
      const double t = std::chrono::duration<double, std::milli>(first_token[id] - t0).count();
      if (o.shared_prefix > 0 && id == arrival.begin()->first) {
        r.first_ttft_ms = t;
      } else {
        ttft.push_back(t);
      }
      if (generated[id] > 1)
        tpot.push_back(std::chrono::duration<double, std::milli>(last_token[id] - first_token[id]).count() /
                       double(generated[id] - 1));
    }
    r.output_tokens_per_s = double(total) / wall;
    r.ttft_ms = percentiles_of(ttft);
    r.tpot_ms = percentiles_of(tpot);
    const engine::engine_stats st = e.stats();
    r.kv_used_fraction = st.kv_blocks_total > 0 ? double(peak_blocks) / double(st.kv_blocks_total) : 0;
    r.prefix_hit_rate = st.prefix_hit_rate;
    r.preemptions = st.preemptions;
    if (st.prefix_hit_rate == 0 && st.preemptions == 0 && total == conc * o.gen)
      r.compute_gflops = double(conc) * request_flops(c, o.prompt_len, o.gen) / wall / 1e9;
    results.push_back(r);
    if (!o.json) {
      std::printf("  %.1f output tokens/s, TTFT p50 %.0f ms p90 %.0f p99 %.0f, TPOT p50 %.1f ms p90 %.1f p99 %.1f, "
                  "KV peak %.0f%%, prefix hits %.0f%%, %lld preemptions",
                  r.output_tokens_per_s, r.ttft_ms.p50, r.ttft_ms.p90, r.ttft_ms.p99, r.tpot_ms.p50, r.tpot_ms.p90,
                  r.tpot_ms.p99, 100 * r.kv_used_fraction, 100 * r.prefix_hit_rate, (long long)r.preemptions);
      if (o.shared_prefix > 0) std::printf(", first request's TTFT %.0f ms", r.first_ttft_ms);
      if (r.compute_gflops > 0) std::printf(", %.0f GFLOP/s", r.compute_gflops);
      if (r.compute_gflops > 0 && peak_gflops > 0) std::printf(" (%.0f%% of the peak)", 100 * r.compute_gflops / peak_gflops);
      std::printf("\n");
    }
  }
  if (o.json) {
    std::string out = "{";
    if (peak_gflops > 0) out += "\"peak_gflops\":" + json_number(peak_gflops) + ",";
    out += "\"results\":[";
    for (size_t i = 0; i < results.size(); ++i) {
      const run_result& r = results[i];
      out += (i ? "," : "") + std::string("{\"concurrency\":") + std::to_string(r.concurrency) +
             ",\"output_tokens_per_s\":" + json_number(r.output_tokens_per_s) +
             ",\"ttft_ms\":" + json_percentiles(r.ttft_ms) + ",\"tpot_ms\":" + json_percentiles(r.tpot_ms) +
             ",\"kv_used_fraction\":" + json_number(r.kv_used_fraction) +
             ",\"prefix_hit_rate\":" + json_number(r.prefix_hit_rate) +
             ",\"preemptions\":" + std::to_string(r.preemptions);
      if (o.shared_prefix > 0) out += ",\"first_ttft_ms\":" + json_number(r.first_ttft_ms);
      if (r.compute_gflops > 0) {
        out += ",\"compute_gflops\":" + json_number(r.compute_gflops);
        if (peak_gflops > 0) out += ",\"compute_peak_fraction\":" + json_number(r.compute_gflops / peak_gflops);
      }
      out += "}";
    }
    out += "]}\n";
    std::fwrite(out.data(), 1, out.size(), stdout);
  }
  return 0;
}

}  // namespace troupe::bench
