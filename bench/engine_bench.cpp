// `troupe bench engine`: batch-1 prefill and decode speed of the CPU engine on one model, with the
// machine's memory bandwidth and fp32 FMA peak measured in the same run, so the figures come as
// fractions of the decode roofline and of the compute peak (absolute times here are noisy).
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <random>

#include "bench/benchmarks.hpp"
#include "common/json_output.hpp"
#include "engine/cpu_backend.hpp"
#include "engine/kernels/cpu/kernels.hpp"
#include "engine/llama_forward.hpp"

namespace troupe::bench {

namespace {

struct bench_options {
  std::string model;
  int64_t prompt_len = 512;
  int64_t gen = 128;
  int threads = 0;
  bool json = false;
  bool no_mmap = false;
};

using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double peak_rss_mb() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
}

int32_t argmax(const std::vector<float>& v) {
  return int32_t(std::max_element(v.begin(), v.end()) - v.begin());
}

int run_engine_bench(const bench_options& o) {
  if (o.prompt_len < 1 || o.gen < 1) return std::fprintf(stderr, "error: --prompt-len and --gen must be >= 1\n"), 2;
  // The machine is shared: bandwidth is probed before and after the timed runs and the higher
  // figure is the roofline's denominator (the conservative choice for our fraction). The first
  // probe runs before the model is loaded, so that its 1 GiB buffer does not count in peak RSS.
  engine::cpu::thread_pool probe_pool(o.threads);
  double bw = engine::cpu::measure_memory_bandwidth(probe_pool);  // GB/s
  const double peak = engine::cpu::measure_fma_peak(probe_pool);  // GFLOP/s
  const double bf16_peak = engine::cpu::measure_bf16_dot_peak(probe_pool);  // GFLOP/s, 0 if none

  int exit_code = 0;
  const auto m = load_bench_model(o.model, o.no_mmap, o.prompt_len, o.gen, exit_code);
  if (!m) return exit_code;
  const engine::model_config& c = m->config;


  auto be = engine::make_cpu_backend(o.threads);
  auto fwd = engine::llama_forward::create(m, *be, o.prompt_len);
  if (!fwd) return std::fprintf(stderr, "error: %s\n", fwd.message().c_str()), 1;
  auto kv = (*fwd)->new_kv(o.prompt_len + o.gen);
  if (!kv) return std::fprintf(stderr, "error: %s\n", kv.message().c_str()), 1;

  std::mt19937 rng(1234);
  std::uniform_int_distribution<int32_t> pick(0, int32_t(c.vocab_size - 1));
  std::vector<int32_t> prompt(size_t(o.prompt_len));
  for (auto& t : prompt) t = pick(rng);
  std::vector<float> logits(size_t(c.vocab_size));

  // Warm-up: fault in every weight page and the kernels' scratch once, outside the timings.
  if (auto r = (*fwd)->forward(std::span(prompt).first(1), 0, **kv, logits); !r)
    return std::fprintf(stderr, "error: %s\n", r.message().c_str()), 1;
  // The roofline's bandwidth is how fast the weights' own pages read (pure loads, before and after
  // the timed runs, the higher figure): on this virtual machine two buffers of one process read
  // at rates up to ~25% apart, so a fresh probe buffer says little about the weights' pages.
  const std::vector<std::span<const std::byte>> weight_spans = m->decode_weight_spans();
  double weights_bw = engine::cpu::measure_read_bandwidth(probe_pool, weight_spans);

  auto t0 = clock_type::now();
  if (auto r = (*fwd)->forward(prompt, 0, **kv, logits); !r)
    return std::fprintf(stderr, "error: %s\n", r.message().c_str()), 1;
  const double prefill_s = seconds_since(t0);

  std::vector<double> step_s;
  int32_t next = argmax(logits);
  for (int64_t i = 0; i < o.gen; ++i) {
    t0 = clock_type::now();
    if (auto r = (*fwd)->forward(std::span<const int32_t>(&next, 1), o.prompt_len + i, **kv, logits); !r)
      return std::fprintf(stderr, "error: %s\n", r.message().c_str()), 1;
    step_s.push_back(seconds_since(t0));
    next = argmax(logits);
  }
  const double rss_mb = peak_rss_mb();  // before the second probe's 1 GiB buffer joins the model
  weights_bw = std::max(weights_bw, engine::cpu::measure_read_bandwidth(probe_pool, weight_spans));
  bw = std::max(bw, engine::cpu::measure_memory_bandwidth(probe_pool));
  std::vector<double> sorted = step_s;
  std::sort(sorted.begin(), sorted.end());
  const double median_step = sorted[sorted.size() / 2];

  // Work per token. Decode reads every weight matrix once plus the KV of the positions so far
  // (the median step sits at the middle position). Prefill: 2 flops per weight per token, plus
  // attention's QK^T and PV (2 * 2 * q_dim flops per attended position, causal: len/2 on average).
  const double weight_bytes = double(m->decode_weight_bytes());
  const double kv_bytes = double((*kv)->bytes_per_token()) * double(o.prompt_len + o.gen / 2);
  const double roofline_s = (weight_bytes + kv_bytes) / (weights_bw * 1e9);
  const double fresh_roofline_s = (weight_bytes + kv_bytes) / (bw * 1e9);  // the fresh buffer's rate
  const double weight_params = double(c.n_layers) * double(c.dim) * double(2 * c.q_dim() + 2 * c.kv_dim() + 3 * c.ffn_dim) +
                               double(c.vocab_size * c.dim) / double(o.prompt_len);  // logits only for the last token
  const double attn_flops = 4.0 * double(c.n_layers) * double(c.q_dim()) * double(o.prompt_len) / 2.0;
  const double prefill_flops = (2.0 * weight_params + attn_flops) * double(o.prompt_len);
  const double prefill_gflops = prefill_flops / prefill_s / 1e9;

  const double decode_tps = 1.0 / median_step;
  const double prefill_tps = double(o.prompt_len) / prefill_s;
  if (o.json) {
    std::printf("{\"prefill_tokens_per_s\":%s,\"decode_tokens_per_s\":%s,\"decode_roofline_fraction\":%s,"
                "\"memory_bandwidth_gb_s\":%s,\"weights_read_gb_s\":%s,\"fresh_buffer_roofline_fraction\":%s,"
                "\"peak_rss_mb\":%s,\"prefill_gflops\":%s,\"fma_peak_gflops\":%s,"
                "\"prefill_peak_fraction\":%s,\"bf16_dot_peak_gflops\":%s,\"weight_bytes\":%.0f,\"threads\":%d,"
                "\"simd\":\"%s\",\"weights\":\"%s\"}\n",
                json_number(prefill_tps).c_str(), json_number(decode_tps).c_str(),
                json_number(roofline_s / median_step).c_str(), json_number(bw).c_str(),
                json_number(weights_bw).c_str(), json_number(fresh_roofline_s / median_step).c_str(),
                json_number(rss_mb).c_str(), json_number(prefill_gflops).c_str(), json_number(peak).c_str(),
                json_number(prefill_gflops / peak).c_str(), json_number(bf16_peak).c_str(), weight_bytes,
                probe_pool.size(), engine::cpu::simd_path(),
                o.no_mmap ? "read" : "mmap");
  } else {
    std::printf("model            %s (%s, %.0f MB of weights per token, %s)\n", o.model.c_str(), c.arch.c_str(),
                weight_bytes / 1e6, o.no_mmap ? "read into huge pages" : "memory-mapped");
    std::printf("machine          %d threads, %s, memory %.1f GB/s (the weights' pages %.1f), fp32 FMA peak %.1f GFLOP/s, "
                "bf16 dot peak %.1f\n",
                probe_pool.size(), engine::cpu::simd_path(), bw, weights_bw, peak, bf16_peak);
    std::printf("prefill          %lld tokens in %.3f s: %.1f tokens/s, %.1f GFLOP/s = %.0f%% of peak\n",
                (long long)o.prompt_len, prefill_s, prefill_tps, prefill_gflops, 100.0 * prefill_gflops / peak);
    std::printf("decode           %lld tokens, median %.2f ms/token: %.2f tokens/s = %.0f%% of roofline (%.2f ms; "
                "%.0f%% of a fresh buffer's)\n",
                (long long)o.gen, median_step * 1e3, decode_tps, 100.0 * roofline_s / median_step, roofline_s * 1e3,
                100.0 * fresh_roofline_s / median_step);
    std::printf("peak RSS         %.0f MB\n", rss_mb);
  }
  return 0;
}

}  // namespace

command_runner add_engine_bench(CLI::App& bench) {
  auto o = std::make_shared<bench_options>();
  auto s = std::make_shared<serving_options>();
  CLI::App* eng = bench.add_subcommand(
      "engine", "batch-1 prefill and decode speed vs. the machine's roofline; with --concurrency, "
                "the continuous-batching engine under load");
  eng->add_option("--model", o->model, "HF folder or .gguf file")->required();
  eng->add_option("--prompt-len", o->prompt_len)->capture_default_str();
  eng->add_option("--gen", o->gen, "tokens to decode")->capture_default_str();
  eng->add_option("--threads", o->threads, "CPU threads (0 = all)")->capture_default_str();
  eng->add_flag("--no-mmap", o->no_mmap, "read the weights into memory (huge pages) instead of mapping the file");
  eng->add_flag("--json", o->json, "print one JSON object");
  auto* conc = eng->add_option("--concurrency", s->concurrency, "concurrent requests, e.g. 1,8,32")->delimiter(',');
  eng->add_option("--shared-prefix", s->shared_prefix, "with --concurrency: prompt tokens all requests share");
  eng->add_option("--max-batched-tokens", s->max_batched_tokens, "with --concurrency: tokens per step")
      ->capture_default_str();
  eng->add_option("--kv-memory", s->kv_memory, "with --concurrency: KV cache bytes (default: room for all)");
  eng->add_option("--kv-memory-fraction", s->kv_memory_fraction,
                  "with --concurrency: KV cache as this share of available memory");
  auto rt = std::make_shared<rate_options>();
  auto* rate = eng->add_option("--request-rate", rt->request_rate,
                               "open-loop Poisson arrivals (requests/s or inf): bench serve's workload in-process");
  eng->add_option("--num-prompts", rt->num_prompts, "with --request-rate: requests")->capture_default_str();
  eng->add_option("--seed", rt->seed, "with --request-rate: prompts and arrivals (as bench serve's --seed)")
      ->capture_default_str();
  return [o, s, conc, rt, rate]() {
    if (rate->count() > 0) {
      rt->model = o->model;
      rt->prompt_len = o->prompt_len;
      rt->gen = o->gen;
      rt->threads = o->threads;
      rt->json = o->json;
      rt->no_mmap = o->no_mmap;
      rt->max_batched_tokens = s->max_batched_tokens;
      return run_rate_bench(*rt);
    }
    if (conc->count() == 0) return run_engine_bench(*o);
    s->model = o->model;
    s->prompt_len = o->prompt_len;
    s->gen = o->gen;
    s->threads = o->threads;
    s->json = o->json;
    s->no_mmap = o->no_mmap;
    return run_serving_bench(*s);
  };
}

}  // namespace troupe::bench
