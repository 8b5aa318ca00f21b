// `troupe bench`, the benchmarks' one entry point: main() registers it on the CLI11 app with the
// other subcommands (the benchmarks themselves are declared in benchmarks.hpp).
#pragma once

#include <CLI/CLI.hpp>

#include "common/command_runner.hpp"

namespace troupe::bench {

command_runner add_bench_command(CLI::App& app);  // troupe bench engine | tokenizer | serve | gpu

}  // namespace troupe::bench
