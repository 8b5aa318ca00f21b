// The benchmark subcommands of `troupe bench`; each registers itself under the "bench" command.
#pragma once

#include <CLI/CLI.hpp>

#include "cli/commands.hpp"

namespace troupe::cli {

command_runner add_engine_bench(CLI::App& bench);     // troupe bench engine
command_runner add_tokenizer_bench(CLI::App& bench);  // troupe bench tokenizer

}  // namespace troupe::cli
