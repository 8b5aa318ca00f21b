// `troupe up [--model PATH] [--workers N] [--http HOST:PORT]`: a whole local cluster in one command.
// This process is the router; N worker processes (this binary, `node --roles worker`) join it and
// are stopped with it. Without --model it serves the default model, generated on first use.
#include <spdlog/spdlog.h>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/child_processes.hpp"
#include "cli/commands.hpp"
#include "cli/node.hpp"
#include "engine/make_backend.hpp"
#include "engine/tiny_model.hpp"

namespace troupe::cli {

namespace {

// $TROUPE_HOME/models/default, else $XDG_CACHE_HOME/troupe/..., else ~/.cache/troupe/...
std::string default_model_dir() {
  if (const char* t = std::getenv("TROUPE_HOME"); t && *t) return std::string(t) + "/models/default";
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return std::string(x) + "/troupe/models/default";
  const char* home = std::getenv("HOME");
  return std::string(home && *home ? home : ".") + "/.cache/troupe/models/default";
}

// The embedded default: the make-tiny model (random weights, a real byte-level BPE tokenizer and a
// chat template), written once.
expected<std::string> ensure_default_model() {
  const std::string dir = default_model_dir();
  if (std::filesystem::exists(dir + "/config.json")) return dir;
  spdlog::info("writing the default model to {}", dir);
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  std::filesystem::remove_all(tmp, ec);
  if (auto ok = engine::make_tiny_model(engine::tiny_model_spec{}, tmp); !ok) return ok.err();
  std::filesystem::create_directories(std::filesystem::path(dir).parent_path(), ec);
  std::filesystem::rename(tmp, dir, ec);
  if (ec) return fail("cannot move the default model into " + dir + ": " + ec.message());
  return dir;
}

}  // namespace

namespace {

// Worker i's device: on GPUs each worker's ranks take the next tp devices ("cuda:2" with tp 2 puts
// worker 0 on GPUs 2-3 and worker 1 on GPUs 4-5); the CPU is shared.
std::string worker_device(engine::device_spec d, int offset) {
  if (d.cuda) d.index += offset;
  return engine::to_string(d);
}

}  // namespace

command_runner add_up_command(CLI::App& app, const log_options& logs) {
  auto o = std::make_shared<node_options>();
  auto workers = std::make_shared<int>(2);
  o->listen = "127.0.0.1:0";
  CLI::App* c = app.add_subcommand("up", "run a whole local cluster: the router here and N worker processes");
  c->add_option("--model", o->model, "model folder or .gguf file (default: the embedded tiny model)");
  c->add_option("--workers", *workers, "worker processes, one shard group each")->capture_default_str();
  c->add_option("--http", o->http, "OpenAI-compatible HTTP API (HOST:PORT)")->capture_default_str();
  c->add_option("--listen", o->listen, "cluster port the workers join (HOST:PORT; 0 = any free port)")
      ->capture_default_str();
  c->add_option("--routing", o->routing, "least-outstanding | prefix-affinity")->capture_default_str();
  c->add_option("--tp", o->tp, "ranks per shard group")->capture_default_str();
  c->add_option("--port-file", o->port_file, "write the bound ports here once listening");
  add_engine_options(c, o.get());
  add_router_options(c, o.get());
  return [o, workers, &logs]() {
    if (*workers < 1 || *workers > 64) {
      std::fprintf(stderr, "error: --workers %d: give 1 to 64\n", *workers);
      return 2;
    }
    if (o->model.empty()) {
      auto m = ensure_default_model();
      if (!m) {
        std::fprintf(stderr, "error: the default model: %s\n", m.message().c_str());
        return 1;
      }
      o->model = *m;
    }
    const auto device = engine::parse_device(o->device);
    if (!device) {
      std::fprintf(stderr, "error: %s\n", device.message().c_str());
      return 2;
    }
    if (o->threads == 0) o->threads = std::max(1, int(std::thread::hardware_concurrency()) / *workers);
    o->router = true;
    o->worker = false;
    capture_stop_signals();
    child_processes children;
    const auto start_workers = [o, workers, &children, &device, &logs](const node_ports& ports) {
      for (int i = 0; i < *workers; ++i) {
        std::vector<std::string> args = {"node", "--roles", "worker", "--join",
                                         "127.0.0.1:" + std::to_string(ports.cluster), "--model", o->model,
                                         "--tp", std::to_string(o->tp), "--threads", std::to_string(o->threads),
                                         "--kv-memory", std::to_string(o->engine.kv_memory_bytes),
                                         "--kv-memory-fraction", std::to_string(o->engine.kv_memory_fraction),
                                         "--max-batched-tokens", std::to_string(o->engine.max_batched_tokens),
                                         "--max-running", std::to_string(o->engine.max_running),
                                         "--block-size", std::to_string(o->engine.block_size),
                                         "--device", worker_device(*device, i * o->tp)};
        if (o->engine.enforce_eager) args.push_back("--enforce-eager");
        args.insert(args.end(), {"--log-level", logs.level, "--log-format", logs.format});
        if (auto pid = children.spawn(args); !pid)
          std::fprintf(stderr, "error: %s\n", pid.message().c_str());
        else
          spdlog::info("started worker {} (pid {})", i, *pid);
      }
    };
    const int code = run_node(*o, start_workers, [&children]() {
      spdlog::info("stopping {} workers", children.pids().size());
      children.stop_all(std::chrono::seconds(5));
    });
    return code;
  };
}

}  // namespace troupe::cli
