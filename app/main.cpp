// troupe: one binary, subcommands for every role. main is the composition root: it wires the
// subcommands of cli/ and bench/ explicitly (no registry), so that neither folder includes the other.
#include <spdlog/spdlog.h>

#include <cstdio>

#include "bench/bench_command.hpp"
#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App app{"troupe: a distributed, actor-based LLM serving cluster"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "troupe 0.1.0");
  spdlog::set_pattern("[%H:%M:%S.%e] [%^%l%$] %v");
  spdlog::set_level(spdlog::level::warn);
  const troupe::command_runner runners[] = {
      troupe::cli::add_model_command(app),
      troupe::cli::add_generate_command(app),
      troupe::bench::add_bench_command(app),
      troupe::cli::add_node_command(app),
      troupe::cli::add_up_command(app),
  };
  const auto known = [&app](const char* name) {
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->get_name() == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::fprintf(stderr, "error: unknown command '%s' (commands: up, node, model, generate, bench; see --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  size_t i = 0;
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->parsed()) return runners[i]();
    ++i;
  }
  return 2;
}
