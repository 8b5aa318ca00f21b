// The type every `troupe` subcommand hands back to main(): registered on the CLI11 app, it is
// called with no arguments when the user chose that subcommand, and returns the exit code.
#pragma once

#include <functional>

namespace troupe {

// A registered subcommand: called when the user chose it; returns the process's exit code.
using command_runner = std::function<int()>;

}  // namespace troupe
