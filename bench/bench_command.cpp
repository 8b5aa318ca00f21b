// `troupe bench <engine|tokenizer>`: wires the benchmark subcommands under one "bench" command.
#include "bench/benchmarks.hpp"
#include "cli/commands.hpp"

namespace troupe::cli {

command_runner add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "benchmarks");
  bench->require_subcommand(1);
  const command_runner run_engine = add_engine_bench(*bench);
  const command_runner run_tokenizer = add_tokenizer_bench(*bench);
  return [bench, run_engine, run_tokenizer]() {
    return bench->got_subcommand("engine") ? run_engine() : run_tokenizer();
  };
}

}  // namespace troupe::cli
