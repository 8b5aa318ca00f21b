// One Troupe node: the process that runs the roles it is given (router, worker) on one CAF actor
// system and one kj event loop, until Ctrl-C / SIGTERM, or (worker-only nodes) until the router
// it joined is gone. `troupe node` and `troupe up` both run it.
#pragma once

#include <CLI/CLI.hpp>
#include <caf/actor_system_config.hpp>
#include <functional>
#include <string>
#include <vector>

#include "autoscaler/autoscaler_actor.hpp"
#include "common/expected.hpp"
#include "engine/llm_engine.hpp"

namespace troupe::cli {

struct node_options {
  bool router = false;
  bool worker = false;
  bool cache = false;                     // the response cache actor in this node (`--roles cache` alone: published on --listen)
  std::string listen = "127.0.0.1:7070";  // router: the cluster (CAF) port workers join
  std::string join;                       // worker without the router role: the router node's cluster port
  std::string http = "127.0.0.1:8000";    // router: the OpenAI-compatible API
  std::string model;
  std::string routing = "least-outstanding";
  std::string name;                       // worker: the group's name (default host:pid/0); --group
  int tp = 1;
  std::string device = "cpu";             // worker: cpu, cuda, cuda:N (one GPU per rank from N)
  // Tensor parallelism across processes: -1 = the group's ranks are threads of this node; 0 = this
  // node is the group's leader and ranks 1 .. tp-1 are `--rank R` nodes of the same --group;
  // R > 0 = this node is rank R (it runs the leader's steps and serves nothing itself).
  int rank = -1;
  std::string rank_address = "127.0.0.1";  // where this node's ranks listen for their peers (Gloo TCP)
  double rank_timeout_s = 10;              // joining a group, and every collective: a dead or hung rank fails the group within it
  int threads = 0;
  double join_timeout_s = 30;             // worker: how long to keep trying to reach the router
  std::string port_file;                  // written once listening: "http=P\ncluster=P\nrpc=P\n"
  std::string rpc;                        // router: the Cap'n Proto API (HOST:PORT); empty = none
  std::vector<std::string> api_keys;      // router: --api-key (repeatable)
  std::string api_key_file;               // router: --api-key-file
  bool protect_metrics = false;           // router: /health and /metrics need a key too
  double http_header_timeout_s = 10;      // router: request line and headers, from the first byte
  double http_body_timeout_s = 30;        // router: a request body, once its headers are in (408)
  double http_idle_timeout_s = 5;         // router: a kept-alive connection between requests
  int64_t http_max_connections = 1024;    // router: open HTTP connections at once (more: 503)
  int64_t rpc_max_connections = 1024;     // router: open Cap'n Proto connections at once (more: closed)
  double rpc_auth_timeout_s = 10;         // router: a Cap'n Proto client must authenticate within it
  int64_t rpc_preauth_bytes = 64 << 10;   // router: bytes a Cap'n Proto client may send or declare before that
  int64_t max_queued_requests = 256;      // router: admitted requests without a first token (more: 429)
  int64_t max_queued_tokens = 1 << 20;    // router: their prompt tokens (more: 429)
  double max_queue_wait_s = 0.1;          // router: queued requests beyond what starts in this time: 429
  int32_t group_queue = 4;                // router: requests sent to a group beyond its --max-running
  int32_t prepare_threads = 2;            // router: threads for templates and tokenizers
  double request_timeout_s = 600;         // router: a request's deadline from submission (0: none)
  double hold_timeout_s = 0;              // router: scale from zero: how long a request waits for a first group (0: 503 at once)
  int32_t hold_max = 64;                  // router: requests held so at once (more: 503)
  // The response cache: in the router's node unless --no-cache or --cache-node names a cache node.
  bool no_cache = false;
  std::string cache_node;                 // router: HOST:PORT of a `--roles cache` node
  int64_t cache_max_bytes = int64_t(256) << 20;
  int64_t cache_ttl_s = 3600;
  std::string cache_redis;                // HOST:PORT of a Redis server shared by several routers
  bool cache_nondeterministic = false;    // also cache sampled requests without a seed
  engine::engine_config engine;
  // The cluster port: mutual TLS with this node's folder of certificates (ca.pem, node.pem,
  // node.key), unless insecure (then anyone who reaches the port is a peer).
  std::string cluster_certs;
  bool insecure_cluster = false;
  // SIGTERM / Ctrl-C: how long requests in flight may run on before the node ends them and stops.
  double drain_timeout_s = 30;
  // The autoscaler role (router nodes): on when a launcher is given (`troupe up` gives one).
  std::shared_ptr<autoscaler::launcher> launcher;
  std::string scale_policy = "fixed";      // --scale-policy
  autoscaler::scaling_config scaling;      // --min-workers, --max-workers, --scale-signal, ...
  autoscaler::autoscaler_options autoscale;  // --scale-mode, --start-timeout; the model's name
};

struct node_ports {
  uint16_t http = 0;
  uint16_t cluster = 0;
  uint16_t rpc = 0;
};

// Runs until stopped; returns the process exit code. `on_ready` runs on the main thread once the
// node listens (router) or has joined (worker); `on_stop` runs before the node shuts down.
int run_node(const node_options& options, const std::function<void(const node_ports&)>& on_ready = {},
             const std::function<void()>& on_stop = {});

// The engine options a worker takes (--threads, --kv-memory, ...), shared by `node` and `up`.
void add_engine_options(CLI::App* command, node_options* options);
// --cluster-certs, --insecure-cluster and --drain-timeout, shared by `node` and `up`.
void add_cluster_options(CLI::App* command, node_options* options);
// Sets `cfg` up for the cluster port as `options` say: mutual TLS, or plain with a warning.
// An error when neither certificates nor --insecure-cluster are given.
[[nodiscard]] expected<void> secure_cluster_port(caf::actor_system_config& cfg, const node_options& options);
// The router's client-facing options (--rpc, --api-key, --cache-*, ...), shared by `node` and `up`.
void add_router_options(CLI::App* command, node_options* options);

// `troupe node --roles worker --rank R (R > 0) --group G --tp N --join HOST:PORT --model PATH`: one
// rank process of group G. It finds the group's rendezvous at the router, joins its leader and the
// other ranks, and runs the leader's steps until the group stops (exit 0), fails (exit 4), or a
// signal ends it. Called by run_node.
int run_rank_node(const node_options& options);

// Routes SIGINT and SIGTERM to the node's event loop (a clean stop) instead of ending the process.
// Idempotent; run_node calls it too.
void capture_stop_signals();
// The read end that becomes readable on SIGINT / SIGTERM once captured (-1 before).
[[nodiscard]] int stop_signal_fd();

// Stops the node as a stop signal would, and makes run_node return `code`. Any thread.
void request_node_stop(int code);

}  // namespace troupe::cli
