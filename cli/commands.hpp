// The `troupe` subcommands built in cli/ (`bench` is bench/bench_command.hpp). Each registers its
// options on the CLI11 app and returns the exit code when run; main() (app/main.cpp) wires them.
#pragma once

#include <CLI/CLI.hpp>

#include "common/command_runner.hpp"
#include "common/logging.hpp"

namespace troupe::cli {

command_runner add_model_command(CLI::App& app);     // troupe model make-tiny | info
command_runner add_generate_command(CLI::App& app);  // troupe generate
command_runner add_node_command(CLI::App& app);      // troupe node
command_runner add_cluster_command(CLI::App& app);   // troupe cluster certs
// troupe up; its worker processes log as `logs` says (the options main parsed).
command_runner add_up_command(CLI::App& app, const log_options& logs);

}  // namespace troupe::cli
