// `troupe bench gpu --model PATH`: the CUDA backend on one GPU, with the device's bandwidth and
// bf16 GEMM rate measured in the same run: decode tokens/s at several batch sizes as fractions of
// the bandwidth roofline, prefill TFLOP/s at a long prompt as a fraction of the GEMM rate at the
// model's largest matrix shape, and the device memory used. Without CUDA (or a device): an error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>

#include "bench/benchmarks.hpp"
#include "common/json_output.hpp"
#include "engine/llama_forward.hpp"
#include "engine/make_backend.hpp"
#if TROUPE_HAVE_CUDA
#include "engine/kernels/cuda/device_probes.hpp"
#endif

namespace troupe::bench {

namespace {

struct gpu_bench_options {
  std::string model;
  std::string device = "cuda";
  std::vector<int64_t> batches{1, 16, 64};
  int64_t context = 512;  // prompt tokens of every sequence before the timed decode steps
  int64_t steps = 32;     // timed decode steps per batch size
  int64_t prefill = 2048; // tokens of the prefill measurement
  bool json = false;
};

using clock_type = std::chrono::steady_clock;

#if TROUPE_HAVE_CUDA

struct decode_result {
  int64_t batch = 0;
  double step_ms = 0, tokens_per_s = 0, roofline_fraction = 0;  // with decode graphs
  double eager_tokens_per_s = 0;                                 // the same steps op by op
};

// Matrix parameters read by one decode step (every layer's projections and the output head).
double matrix_params(const engine::model_config& c) {
  const double per_layer = double(c.dim) * double(2 * c.q_dim() + 2 * c.kv_dim() + 3 * c.ffn_dim);
  return double(c.n_layers) * per_layer + double(c.vocab_size) * double(c.dim);
}

int fail_with(const std::string& m) {
  std::fprintf(stderr, "error: %s\n", m.c_str());
  return 1;
}

int run_gpu_bench(const gpu_bench_options& o) {
  if (o.batches.empty() || o.context < 1 || o.steps < 1 || o.prefill < 1)
    return std::fprintf(stderr, "error: --batches, --context, --steps and --prefill must be positive\n"), 2;
  const auto spec = engine::parse_device(o.device);
  if (!spec) return fail_with(spec.message());
  if (!spec->cuda) return fail_with("bench gpu: --device " + o.device + " is not a GPU (give cuda or cuda:N)");
  const int device = spec->index;
  int exit_code = 0;
  const int64_t longest = std::max(o.context + o.steps, o.prefill);
  const auto m = load_bench_model(o.model, false, longest, 0, exit_code);
  if (!m) return exit_code;
  const engine::model_config& c = m->config;
  auto bw = engine::cuda::measure_device_bandwidth(device);
  if (!bw) return fail_with(bw.message());
  auto gemm = engine::cuda::measure_bf16_gemm_tflops(device, o.prefill, c.ffn_dim, c.dim);
  if (!gemm) return fail_with(gemm.message());
  auto gemm_square = engine::cuda::measure_bf16_gemm_tflops(device, 8192, 8192, 8192);
  if (!gemm_square) return fail_with(gemm_square.message());

  auto be = engine::make_backend(o.device, 0);
  if (!be) return fail_with(be.message());
  const int64_t max_batch = *std::max_element(o.batches.begin(), o.batches.end());
  auto fwd = engine::llama_forward::create(m, **be, std::max({o.prefill, o.context, max_batch}));
  if (!fwd) return fail_with(fwd.message());
  const int64_t block = 16;
  const int64_t blocks_per_seq = (longest + block - 1) / block;
  auto kv = (*fwd)->new_paged_kv(max_batch * blocks_per_seq, block);
  if (!kv) return fail_with(kv.message());
  auto used = engine::cuda::device_memory_used(device);
  if (!used) return fail_with(used.message());

  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(max_batch));
  for (int64_t s = 0; s < max_batch; ++s) {
    tables[size_t(s)].resize(size_t(blocks_per_seq));
    std::iota(tables[size_t(s)].begin(), tables[size_t(s)].end(), int32_t(s * blocks_per_seq));
  }
  std::vector<std::span<const int32_t>> table_spans(tables.begin(), tables.end());
  const auto token = [&c](int64_t i) { return int32_t((i * 7919 + 13) % c.vocab_size); };

  // Prefill every sequence's context once (one sequence per call), untimed.
  {
    std::vector<int32_t> tokens(size_t(o.context)), pos(size_t(o.context)), seq(size_t(o.context));
    std::iota(pos.begin(), pos.end(), 0);
    std::vector<float> logits(size_t(c.vocab_size));
    for (int64_t s = 0; s < max_batch; ++s) {
      for (int64_t i = 0; i < o.context; ++i) tokens[size_t(i)] = token(s + i);
      std::fill(seq.begin(), seq.end(), int32_t(s));
      const int32_t last = int32_t(o.context - 1);
      engine::llama_forward::batch b{tokens, pos, seq, table_spans, std::span<const int32_t>(&last, 1)};
      if (auto r = (*fwd)->forward_batch(b, **kv, logits); !r) return fail_with(r.message());
    }
  }

  const double weight_bytes = 2.0 * matrix_params(c);  // bf16 on the device
  const double kv_bytes_per_pos = double(c.n_layers) * 2.0 * double(c.kv_dim()) * 4.0;
  // The median step time of o.steps decode steps of `batch` sequences (graphs: up to 256 wide, or
  // none); the first step of a batch size captures its graph, which the median leaves out.
  std::string decode_error;
  const auto median_step = [&](int64_t batch, bool graphs) -> double {
    (*fwd)->set_graph_max_batch(graphs ? 256 : 0);
    const size_t nb = static_cast<size_t>(batch);
    std::vector<int32_t> tokens(nb), pos(nb), seq(nb), rows(nb);
    std::iota(seq.begin(), seq.end(), 0);
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<float> logits(size_t(batch * c.vocab_size));
    std::vector<double> step_s;
    for (int64_t i = 0; i < o.steps; ++i) {
      for (int64_t s = 0; s < batch; ++s) {
        tokens[size_t(s)] = token(i + s);
        pos[size_t(s)] = int32_t(o.context + i);
      }
      engine::llama_forward::batch b{tokens, pos, seq, table_spans, rows};
      const auto t0 = clock_type::now();
      if (auto r = (*fwd)->forward_batch(b, **kv, logits); !r) {
        decode_error = r.message();
        return 0;
      }
      step_s.push_back(std::chrono::duration<double>(clock_type::now() - t0).count());
    }
    std::sort(step_s.begin(), step_s.end());
    return step_s[step_s.size() / 2];
  };
  std::vector<decode_result> decode;
  for (const int64_t batch : o.batches) {
    const double eager = median_step(batch, false);
    const double median = decode_error.empty() ? median_step(batch, true) : 0;
    if (!decode_error.empty()) return fail_with(decode_error);
    const double bytes = weight_bytes + double(batch) * kv_bytes_per_pos * double(o.context + o.steps / 2);
    decode.push_back({batch, median * 1e3, double(batch) / median, bytes / (*bw * 1e9) / median, double(batch) / eager});
  }
  const auto graphs = (*fwd)->graphs();

  // Prefill: one sequence of o.prefill tokens in one call, logits of the last token only.
  std::vector<int32_t> tokens(size_t(o.prefill)), pos(size_t(o.prefill)), seq(size_t(o.prefill), 0);
  for (int64_t i = 0; i < o.prefill; ++i) tokens[size_t(i)] = token(i);
  std::iota(pos.begin(), pos.end(), 0);
  const int32_t last = int32_t(o.prefill - 1);
  std::vector<float> logits(size_t(c.vocab_size));
  engine::llama_forward::batch pb{tokens, pos, seq, table_spans, std::span<const int32_t>(&last, 1)};
  if (auto r = (*fwd)->forward_batch(pb, **kv, logits); !r) return fail_with(r.message());  // warm-up
  const auto t0 = clock_type::now();
  if (auto r = (*fwd)->forward_batch(pb, **kv, logits); !r) return fail_with(r.message());
  const double prefill_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  const double layer_params = matrix_params(c) - double(c.vocab_size) * double(c.dim);
  const double prefill_flops = 2.0 * layer_params * double(o.prefill) +
                               4.0 * double(c.n_layers) * double(c.q_dim()) * double(o.prefill) * double(o.prefill) / 2.0;
  const double prefill_tflops = prefill_flops / prefill_s / 1e12;
  const double batch1 = decode.front().tokens_per_s;

  if (o.json) {
    std::string out = "{\"model\":" + json_string(o.model) + ",\"memory_bandwidth_gb_s\":" + json_number(*bw) +
                      ",\"gemm_tflops\":" + json_number(*gemm) + ",\"gemm_8192_tflops\":" + json_number(*gemm_square) +
                      ",\"device_memory_used_bytes\":" + std::to_string(*used) + ",\"decode\":[";
    for (size_t i = 0; i < decode.size(); ++i) {
      const auto& d = decode[i];
      out += std::string(i ? "," : "") + "{\"batch\":" + std::to_string(d.batch) + ",\"step_ms\":" + json_number(d.step_ms) +
             ",\"tokens_per_s\":" + json_number(d.tokens_per_s) + ",\"roofline_fraction\":" +
             json_number(d.roofline_fraction) + ",\"vs_batch1\":" + json_number(d.tokens_per_s / batch1) +
             ",\"eager_tokens_per_s\":" + json_number(d.eager_tokens_per_s) + "}";
    }
    out += "],\"graphs_captured\":" + std::to_string(graphs.captured) +
           ",\"graphs_launched\":" + std::to_string(graphs.launched);
    out += ",\"prefill_tokens\":" + std::to_string(o.prefill) + ",\"prefill_tflops\":" + json_number(prefill_tflops) +
           ",\"prefill_gemm_fraction\":" + json_number(prefill_tflops / *gemm) + "}\n";
    std::fputs(out.c_str(), stdout);
    return 0;
  }
  std::printf("model      %s (%.2f B matrix params, bf16 on the device; context %lld)\n", o.model.c_str(),
              matrix_params(c) / 1e9, (long long)o.context);
  std::printf("device     %s: copy bandwidth %.0f GB/s, bf16 GEMM %.0f TFLOP/s at [%lld x %lld x %lld], %.0f at 8192^3\n",
              o.device.c_str(), *bw, *gemm, (long long)o.prefill, (long long)c.ffn_dim, (long long)c.dim, *gemm_square);
  std::printf("memory     %.2f GiB of device memory in use (weights, KV cache, workspace)\n", double(*used) / (1u << 30));
  std::printf("%-8s %10s %12s %10s %10s %14s\n", "batch", "step ms", "tokens/s", "roofline", "vs b=1",
              "eager tok/s");
  for (const auto& d : decode)
    std::printf("%-8lld %10.3f %12.1f %9.0f%% %9.1fx %14.1f\n", (long long)d.batch, d.step_ms, d.tokens_per_s,
                100.0 * d.roofline_fraction, d.tokens_per_s / batch1, d.eager_tokens_per_s);
  std::printf("graphs     %lld decode graphs captured, %lld launched (step ms, tokens/s and roofline are with graphs)\n",
              (long long)graphs.captured, (long long)graphs.launched);
  std::printf("prefill    %lld tokens in %.1f ms: %.1f TFLOP/s = %.0f%% of the GEMM rate\n", (long long)o.prefill,
              prefill_s * 1e3, prefill_tflops, 100.0 * prefill_tflops / *gemm);
  return 0;
}

#else

int run_gpu_bench(const gpu_bench_options&) {
  std::fprintf(stderr, "error: bench gpu: this troupe was built without CUDA (nvcc was not found at configure time)\n");
  return 1;
}

#endif

}  // namespace

command_runner add_gpu_bench(CLI::App& bench) {
  auto o = std::make_shared<gpu_bench_options>();
  CLI::App* g = bench.add_subcommand("gpu", "the CUDA backend on one GPU vs. its bandwidth and GEMM rate");
  g->add_option("--model", o->model, "HF folder or .gguf file")->required();
  g->add_option("--device", o->device, "cuda or cuda:N")->capture_default_str();
  g->add_option("--batches", o->batches, "decode batch sizes")->delimiter(',');
  g->add_option("--context", o->context, "tokens per sequence before the timed decode steps")->capture_default_str();
  g->add_option("--steps", o->steps, "timed decode steps per batch size")->capture_default_str();
  g->add_option("--prefill", o->prefill, "prompt tokens of the prefill measurement")->capture_default_str();
  g->add_flag("--json", o->json, "print one JSON object");
  return [o]() { return run_gpu_bench(*o); };
}

}  // namespace troupe::bench
