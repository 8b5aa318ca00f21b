// The benchmark subcommands of `troupe bench`; each registers itself under the "bench" command.
#pragma once

#include <CLI/CLI.hpp>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/command_runner.hpp"
#include "engine/model/model.hpp"

namespace troupe::bench {

command_runner add_engine_bench(CLI::App& bench);     // troupe bench engine [--concurrency ...]

// `troupe bench engine --concurrency C1,C2,...`: the continuous-batching engine under load.
struct serving_options {
  std::string model;
  std::vector<int64_t> concurrency;
  int64_t prompt_len = 256;
  int64_t gen = 128;
  int64_t shared_prefix = 0;         // leading prompt tokens all requests share
  int64_t max_batched_tokens = 256;  // tokens per step
  int64_t kv_memory = 0;             // bytes; 0 = room for every request
  double kv_memory_fraction = 0;     // > 0: this share of available memory instead
  int threads = 0;
  bool json = false;
  bool no_mmap = false;
};
int run_serving_bench(const serving_options& o);

// --request-rate: bench serve's open-loop workload straight into one engine (engine_rate_bench.cpp).
struct rate_options {
  std::string model;
  std::string request_rate;          // requests/s or "inf"
  int64_t num_prompts = 64;
  int64_t prompt_len = 256;
  int64_t gen = 128;
  int64_t max_batched_tokens = 256;
  uint64_t seed = 0;
  int threads = 0;
  bool json = false;
  bool no_mmap = false;
};
int run_rate_bench(const rate_options& o);

// Loads `path` and checks that prompt_len + gen fit its context. On failure prints the error,
// sets `exit_code` (1: the model could not be loaded, 2: the arguments) and returns null.
std::shared_ptr<const engine::model> load_bench_model(const std::string& path, bool no_mmap, int64_t prompt_len,
                                                      int64_t gen, int& exit_code);
command_runner add_tokenizer_bench(CLI::App& bench);  // troupe bench tokenizer
command_runner add_serve_bench(CLI::App& bench);      // troupe bench serve --url ... (serve_bench.cpp)
command_runner add_gpu_bench(CLI::App& bench);        // troupe bench gpu --model ... (gpu_bench.cpp)

}  // namespace troupe::bench
