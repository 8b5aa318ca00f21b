// `troupe bench <engine|tokenizer|serve|gpu>`: wires the benchmark subcommands under one "bench" command.
#include "bench/bench_command.hpp"

#include "bench/benchmarks.hpp"

namespace troupe::bench {

command_runner add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  const command_runner run_engine = add_engine_bench(*bench);
  const command_runner run_tokenizer = add_tokenizer_bench(*bench);
  const command_runner run_serve = add_serve_bench(*bench);
  const command_runner run_gpu = add_gpu_bench(*bench);
  return [bench, run_engine, run_tokenizer, run_serve, run_gpu]() {
    if (bench->got_subcommand("serve")) return run_serve();
    if (bench->got_subcommand("gpu")) return run_gpu();
    return bench->got_subcommand("engine") ? run_engine() : run_tokenizer();
  };
}

}  // namespace troupe::bench
