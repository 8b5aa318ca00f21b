// troupe: one binary, subcommands for every role. main is the composition root: it wires the
// subcommands of cli/ and bench/ explicitly (no registry), so that neither folder includes the other.
#include <cstdio>

#include "bench/bench_command.hpp"
#include "cli/commands.hpp"
#include "common/logging.hpp"

int main(int argc, char** argv) {
  CLI::App app{"troupe: a distributed, actor-based LLM serving cluster"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "troupe 0.1.0");
  // The log's options, before or after the subcommand (fallthrough): `troupe node ... --log-level debug`.
  troupe::log_options logs;
  app.add_option("--log-level", logs.level, "trace, debug, info, warn, error or off")->capture_default_str();
  app.add_option("--log-format", logs.format, "text, or json (one object per line)")->capture_default_str();
  app.fallthrough();
  const troupe::command_runner runners[] = {
      troupe::cli::add_model_command(app),
      troupe::cli::add_generate_command(app),
      troupe::bench::add_bench_command(app),
      troupe::cli::add_node_command(app),
      troupe::cli::add_cluster_command(app),
      troupe::cli::add_up_command(app, logs),
  };
  const auto known = [&app](const char* name) {
    for (const CLI::App* sub : app.get_subcommands({}))
      if (sub->get_name() == name) return true;
    return false;
  };
  if (argc > 1 && argv[1][0] != '-' && !known(argv[1])) {
    std::fprintf(stderr, "error: unknown command '%s' (commands: up, node, cluster, model, generate, bench; see --help)\n", argv[1]);
    return 2;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (auto ok = troupe::setup_logging(logs); !ok) {
    std::fprintf(stderr, "error: %s\n", ok.message().c_str());
    return 2;
  }
  size_t i = 0;
  for (CLI::App* sub : app.get_subcommands({})) {
    if (sub->parsed()) return runners[i]();
    ++i;
  }
  return 2;
}
