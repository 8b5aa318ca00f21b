// The `troupe` subcommands. Each registers its options on the CLI11 app and returns the exit code
// when run; main() wires them explicitly.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace troupe::cli {

// A registered subcommand: `run` is called when the user chose it.
using command_runner = std::function<int()>;

command_runner add_model_command(CLI::App& app);     // troupe model make-tiny | info
command_runner add_generate_command(CLI::App& app);  // troupe generate
command_runner add_bench_command(CLI::App& app);     // troupe bench engine | tokenizer | serve
command_runner add_node_command(CLI::App& app);      // troupe node
command_runner add_up_command(CLI::App& app);        // troupe up

}  // namespace troupe::cli
