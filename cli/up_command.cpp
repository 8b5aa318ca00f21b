// `troupe up [--model PATH] [--workers N] [--http HOST:PORT]`: a whole local cluster in one command.
// This process is the router; N worker processes (this binary, `node --roles worker`) join it and
// are stopped with it. Without --model it serves the default model, generated on first use.
// The cluster port speaks mutual TLS: up makes a fresh CA for its own cluster in its state folder
// and a certificate for itself and each worker, so even a local cluster admits only its own processes.
#include <spdlog/spdlog.h>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "cli/child_processes.hpp"
#include "cli/commands.hpp"
#include "cli/node.hpp"
#include "engine/make_backend.hpp"
#include "common/tls/certificates.hpp"
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

// The state folder: --state-dir, else a fresh private one under the temporary folder (removed at exit).
expected<std::string> make_state_dir(const std::string& given, bool& temporary) {
  std::error_code ec;
  if (!given.empty()) {
    std::filesystem::create_directories(given, ec);
    if (ec) return fail("--state-dir " + given + ": " + ec.message());
    std::filesystem::permissions(given, std::filesystem::perms::owner_all, ec);
    temporary = false;
    return given;
  }
  std::string tmpl = (std::filesystem::temp_directory_path(ec) / "troupe-up-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) return fail("cannot make a state folder " + tmpl);
  temporary = true;
  return tmpl;
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
  auto state_dir = std::make_shared<std::string>();
  c->add_option("--state-dir", *state_dir, "the cluster's state (its CA and certificates); default: a fresh temporary folder");
  add_cluster_options(c, o.get());
  add_engine_options(c, o.get());
  add_router_options(c, o.get());
  return [o, workers, state_dir, &logs]() {
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
    bool temporary = false;
    auto state = make_state_dir(*state_dir, temporary);
    if (!state) {
      std::fprintf(stderr, "error: %s\n", state.message().c_str());
      return 1;
    }
    const std::string ca = *state + "/certs/ca";
    // --cluster-certs: the router and its workers use that folder (a cluster shared with other nodes,
    // e.g. a cache node); else this cluster's own CA and a certificate per process.
    const bool own_ca = !o->insecure_cluster && o->cluster_certs.empty();
    if (own_ca) {
      o->cluster_certs = *state + "/certs/router";
      auto ok = tls::ensure_ca(ca);
      if (ok) ok = tls::issue(ca, {"127.0.0.1", true, 825}, o->cluster_certs);
      if (!ok) {
        std::fprintf(stderr, "error: the cluster's certificates: %s\n", ok.message().c_str());
        return 1;
      }
    }
    capture_stop_signals();
    child_processes children;
    const auto start_workers = [o, workers, own_ca, &children, &device, &logs, &ca, &state](const node_ports& ports) {
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
        if (o->insecure_cluster) {
          args.push_back("--insecure-cluster");
        } else if (!own_ca) {
          args.insert(args.end(), {"--cluster-certs", o->cluster_certs});
        } else {
          const std::string certs = *state + "/certs/worker-" + std::to_string(i);
          if (auto ok = tls::issue(ca, {"127.0.0.1", true, 825}, certs); !ok) {
            std::fprintf(stderr, "error: worker %d's certificate: %s\n", i, ok.message().c_str());
            continue;
          }
          args.insert(args.end(), {"--cluster-certs", certs});
        }
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
    if (temporary) {
      std::error_code ec;
      std::filesystem::remove_all(*state, ec);
    }
    return code;
  };
}

}  // namespace troupe::cli
