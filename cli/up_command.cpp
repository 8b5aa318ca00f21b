// `troupe up [--model PATH] [--workers N] [--http HOST:PORT]`: a whole local cluster in one command.
// This process is the router; N worker processes (this binary, `node --roles worker`) join it and
// are stopped with it. Without --model it serves the default model, generated on first use.
// The cluster port speaks mutual TLS: up makes a fresh CA for its own cluster in its state folder
// and a certificate for itself and each worker, so even a local cluster admits only its own processes.
#include <spdlog/spdlog.h>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "autoscaler/local_launcher.hpp"
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
  auto min_workers = std::make_shared<int>(-1);
  auto max_workers = std::make_shared<int>(-1);
  auto scale_policy = std::make_shared<std::string>();
  auto scale_mode = std::make_shared<std::string>("on");
  o->listen = "127.0.0.1:0";
  CLI::App* c = app.add_subcommand("up", "run a whole local cluster: the router here and N worker processes");
  c->add_option("--model", o->model, "model folder or .gguf file (default: the embedded tiny model)");
  c->add_option("--workers", *workers, "worker processes, one shard group each (the autoscaler keeps them)")
      ->capture_default_str();
  c->add_option("--min-workers", *min_workers, "the autoscaler's least workers (default: --workers)");
  c->add_option("--max-workers", *max_workers, "the autoscaler's most workers (default: --workers)");
  c->add_option("--scale-policy", *scale_policy, "fixed | target (default: fixed when min = max, else target)");
  c->add_option("--scale-signal", o->scaling.signal, "target policy: outstanding | kv | waiting | queue (seconds to first token at a group, p90)")->capture_default_str();
  c->add_option("--scale-target", o->scaling.target, "target policy: the signal's value per group")->capture_default_str();
  c->add_option("--scale-up-window", o->scaling.up_window_s, "target policy: seconds a higher load must last")
      ->capture_default_str();
  c->add_option("--scale-down-window", o->scaling.down_window_s, "target policy: seconds a lower load must last")
      ->capture_default_str();
  c->add_option("--scale-mode", *scale_mode, "on | dry-run (log the policy's changes, act on none)")->capture_default_str();
  c->add_option("--start-timeout", o->autoscale.start_timeout_s, "seconds a started worker has to serve")
      ->capture_default_str();
  c->add_option("--hold-timeout", o->hold_timeout_s,
                "seconds a request waits for a first group while none serves (default: 30 with --min-workers 0, else 0: 503 at once)");
  c->add_option("--hold-max", o->hold_max, "requests held so at once (more: 503 with Retry-After)")->capture_default_str();
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
  return [o, workers, min_workers, max_workers, scale_policy, scale_mode, state_dir, &logs]() {
    if (*workers < 1 || *workers > 64) {
      std::fprintf(stderr, "error: --workers %d: give 1 to 64\n", *workers);
      return 2;
    }
    o->scaling.min_replicas = *min_workers >= 0 ? *min_workers : *workers;
    o->scaling.max_replicas = *max_workers >= 0 ? *max_workers : std::max(*workers, o->scaling.min_replicas);
    if (o->scaling.min_replicas == 0 && o->hold_timeout_s <= 0) o->hold_timeout_s = 30;  // scale from zero holds
    if (!(o->hold_timeout_s >= 0 && o->hold_timeout_s <= 3600) || o->hold_max < 1 || o->hold_max > 100000) {
      std::fprintf(stderr, "error: --hold-timeout must be in [0, 3600] s and --hold-max in [1, 100000]\n");
      return 2;
    }
    o->scale_policy = !scale_policy->empty() ? *scale_policy
                      : o->scaling.min_replicas == o->scaling.max_replicas ? "fixed" : "target";
    if (*scale_mode != "on" && *scale_mode != "dry-run") {
      std::fprintf(stderr, "error: --scale-mode '%s': give on or dry-run\n", scale_mode->c_str());
      return 2;
    }
    o->autoscale.dry_run = *scale_mode == "dry-run";
    if (auto p = autoscaler::make_scaling_policy(o->scale_policy, o->scaling); !p) {
      std::fprintf(stderr, "error: %s\n", p.message().c_str());
      return 2;
    }
    if (!(o->autoscale.start_timeout_s > 0 && o->autoscale.start_timeout_s <= 3600)) {
      std::fprintf(stderr, "error: --start-timeout: give (0, 3600] seconds\n");
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
    if (o->threads == 0) o->threads = std::max(1, int(std::thread::hardware_concurrency()) / o->scaling.max_replicas);
    o->router = true;
    o->worker = false;
    o->autoscale.model = std::filesystem::path(o->model).filename().string();
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
    // The workers: this binary as `node --roles worker` under the group name the autoscaler gives,
    // each with its own certificate. On GPUs, worker "wN" takes the tp devices of slot N mod
    // --max-workers ("cuda:2" with tp 2 puts slot 0 on GPUs 2-3 and slot 1 on GPUs 4-5).
    const engine::device_spec dev = *device;
    const std::string state_path = *state;
    const std::string router_certs = o->cluster_certs;
    const node_options& opt = *o;
    auto args_for = [&opt, dev, own_ca, state_path, ca, router_certs, &logs](
                        const std::string& name, const std::string& router) -> expected<std::vector<std::string>> {
      const int slot = std::atoi(name.c_str() + 1) % std::max(1, opt.scaling.max_replicas);
      std::vector<std::string> args = {"node", "--roles", "worker", "--join", router, "--group", name,
                                       "--model", opt.model, "--tp", std::to_string(opt.tp),
                                       "--threads", std::to_string(opt.threads),
                                       "--kv-memory", std::to_string(opt.engine.kv_memory_bytes),
                                       "--kv-memory-fraction", std::to_string(opt.engine.kv_memory_fraction),
                                       "--max-batched-tokens", std::to_string(opt.engine.max_batched_tokens),
                                       "--max-running", std::to_string(opt.engine.max_running),
                                       "--block-size", std::to_string(opt.engine.block_size),
                                       "--device", worker_device(dev, slot * opt.tp),
                                       "--drain-timeout", std::to_string(opt.drain_timeout_s)};
      if (opt.engine.enforce_eager) args.push_back("--enforce-eager");
      if (opt.insecure_cluster) {
        args.push_back("--insecure-cluster");
      } else if (!own_ca) {
        args.insert(args.end(), {"--cluster-certs", router_certs});
      } else {
        const std::string certs = state_path + "/certs/worker-" + name;
        if (auto ok = tls::issue(ca, {"127.0.0.1", true, 825}, certs); !ok)
          return fail("worker " + name + "'s certificate: " + ok.message());
        args.insert(args.end(), {"--cluster-certs", certs});
      }
      args.insert(args.end(), {"--log-level", logs.level, "--log-format", logs.format});
      return args;
    };
    o->launcher = std::make_shared<autoscaler::local_launcher>(args_for);
    capture_stop_signals();
    const int code = run_node(*o);
    o->launcher.reset();
    if (temporary) {
      std::error_code ec;
      std::filesystem::remove_all(*state, ec);
    }
    return code;
  };
}

}  // namespace troupe::cli
