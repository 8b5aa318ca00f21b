// `troupe node --roles router,worker --listen HOST:PORT [--join HOST:PORT] [--model PATH] [--tp N]
// [--http HOST:PORT] ...`: one process of a cluster, running the roles it is given.
#include <sstream>

#include "cli/commands.hpp"
#include "cli/node.hpp"
#include "common/tls/cluster_tls.hpp"

#include <spdlog/spdlog.h>

namespace troupe::cli {

void add_engine_options(CLI::App* c, node_options* o) {
  c->add_option("--threads", o->threads, "CPU threads of a worker's backend (0 = all cores)")->capture_default_str();
  c->add_option("--device", o->device, "worker backend: cpu, cuda or cuda:N (rank r of a group uses GPU N + r)")
      ->capture_default_str();
  c->add_option("--kv-memory", o->engine.kv_memory_bytes, "bytes of the worker's paged KV cache")
      ->capture_default_str();
  c->add_option("--kv-memory-fraction", o->engine.kv_memory_fraction,
                "instead, this share of the available memory for the KV cache");
  c->add_option("--max-batched-tokens", o->engine.max_batched_tokens, "tokens per engine step")->capture_default_str();
  c->add_option("--max-running", o->engine.max_running, "sequences per engine step")->capture_default_str();
  c->add_option("--block-size", o->engine.block_size, "positions per KV block")->capture_default_str();
  c->add_flag("--enforce-eager", o->engine.enforce_eager, "cuda: run decode steps op by op, not as captured CUDA graphs");
}

void add_cluster_options(CLI::App* c, node_options* o) {
  c->add_option("--cluster-certs", o->cluster_certs,
                "this node's certificate folder for mutual TLS on the cluster port (ca.pem, node.pem, node.key; "
                "made by `troupe cluster certs`)");
  c->add_flag("--insecure-cluster", o->insecure_cluster,
              "run the cluster port without TLS: anyone who reaches it can join (tests, trusted networks only)");
  c->add_option("--drain-timeout", o->drain_timeout_s,
                "on SIGTERM / Ctrl-C: seconds requests in flight may run on before they are ended and the node stops")
      ->capture_default_str();
}

expected<void> secure_cluster_port(caf::actor_system_config& cfg, const node_options& o) {
  if (o.insecure_cluster) {
    if (!o.cluster_certs.empty()) return fail("--insecure-cluster and --cluster-certs: give one of them");
    spdlog::warn("--insecure-cluster: the cluster port runs without TLS; anyone who reaches it can join the cluster");
    return {};
  }
  if (o.cluster_certs.empty())
    return fail("the cluster port needs certificates: --cluster-certs DIR (a node's folder made by `troupe cluster "
                "certs --out OUT --hosts ...`), or --insecure-cluster to run it without authentication");
  return tls::use_cluster_tls(cfg, tls::node_files_in(o.cluster_certs));
}

void add_router_options(CLI::App* c, node_options* o) {
  c->add_option("--rpc", o->rpc, "router: Cap'n Proto API (HOST:PORT)");
  c->add_option("--api-key", o->api_keys, "router: a client API key (repeatable); none = open");
  c->add_option("--api-key-file", o->api_key_file, "router: file of API keys, one per line");
  c->add_flag("--protect-metrics", o->protect_metrics, "router: /health and /metrics need a key too");
  c->add_option("--http-header-timeout", o->http_header_timeout_s,
                "router: seconds for a request's line and headers, from its first byte")->capture_default_str();
  c->add_option("--http-body-timeout", o->http_body_timeout_s,
                "router: seconds for a request body once its headers are in (then 408)")->capture_default_str();
  c->add_option("--http-idle-timeout", o->http_idle_timeout_s,
                "router: seconds a kept-alive connection may wait for its next request")->capture_default_str();
  c->add_option("--rpc-max-connections", o->rpc_max_connections,
                "router: open Cap'n Proto connections at once (more are closed)")->capture_default_str();
  c->add_option("--rpc-auth-timeout", o->rpc_auth_timeout_s,
                "router: seconds a Cap'n Proto client has to authenticate")->capture_default_str();
  c->add_option("--rpc-preauth-bytes", o->rpc_preauth_bytes,
                "router: bytes a Cap'n Proto client may send or declare before it authenticates")->capture_default_str();
  c->add_option("--max-queued-requests", o->max_queued_requests,
                "router: requests admitted and waiting for their first token; more get 429 with Retry-After")
      ->capture_default_str();
  c->add_option("--max-queued-tokens", o->max_queued_tokens,
                "router: prompt tokens of the queued requests; more get 429 with Retry-After")
      ->capture_default_str();
  c->add_option("--max-queue-wait", o->max_queue_wait_s,
                "router: seconds of queue at the measured start rate, beyond what the groups hold themselves; more get 429 with "
                "Retry-After. 0: --max-queued-requests alone")
      ->capture_default_str();
  c->add_option("--group-queue", o->group_queue,
                "router: requests a shard group is sent beyond its --max-running; the rest wait at the router, "
                "in the fair order of their API keys' weights")
      ->capture_default_str();
  c->add_option("--request-timeout", o->request_timeout_s,
                "router: seconds a request may take from submission to its last token; then it is ended with a "
                "timeout error (HTTP 504, or an error event on a stream). 0: no deadline")
      ->capture_default_str();
  c->add_option("--prepare-threads", o->prepare_threads,
                "router: threads that run chat templates and tokenizers (off the HTTP and RPC thread)")
      ->capture_default_str();
  c->add_option("--http-max-connections", o->http_max_connections,
                "router: open HTTP connections at once (more get 503 and are closed)")->capture_default_str();
  c->add_flag("--no-cache", o->no_cache, "router: no response cache");
  c->add_option("--cache-node", o->cache_node, "router: use the cache of a `--roles cache` node (HOST:PORT)");
  c->add_option("--cache-max-bytes", o->cache_max_bytes, "response cache: memory bound in bytes")->capture_default_str();
  c->add_option("--cache-ttl", o->cache_ttl_s, "response cache: seconds an entry lives (0 = no expiry)")
      ->capture_default_str();
  c->add_option("--cache-redis", o->cache_redis, "response cache: a Redis server shared by routers (HOST:PORT)");
  c->add_flag("--cache-nondeterministic", o->cache_nondeterministic,
              "response cache: also cache sampled requests without a seed");
}

command_runner add_node_command(CLI::App& app) {
  auto o = std::make_shared<node_options>();
  auto roles = std::make_shared<std::string>("router,worker");
  CLI::App* c = app.add_subcommand("node", "run one cluster node with the given roles");
  c->add_option("--roles", *roles, "comma-separated: router, worker, cache")->capture_default_str();
  c->add_option("--listen", o->listen, "router: cluster port that workers join (HOST:PORT)")->capture_default_str();
  c->add_option("--join", o->join, "worker: the router node's cluster port (HOST:PORT)");
  c->add_option("--http", o->http, "router: OpenAI-compatible HTTP API (HOST:PORT)")->capture_default_str();
  c->add_option("--model", o->model, "model folder or .gguf file (router and worker roles)");
  c->add_option("--tp", o->tp, "ranks in a worker's shard group")->capture_default_str();
  c->add_option("--routing", o->routing, "router: least-outstanding | prefix-affinity")->capture_default_str();
  c->add_option("--name,--group", o->name, "worker: the shard group's name (default HOST:PID/0)");
  c->add_option("--rank", o->rank, "worker: this node is rank R of --group (0 = its leader; ranks > 0 serve nothing)");
  c->add_option("--rank-address", o->rank_address, "worker: where this node's ranks listen for their peers")
      ->capture_default_str();
  c->add_option("--rank-timeout", o->rank_timeout_s,
                "worker: seconds within which a dead or hung rank fails its group")->capture_default_str();
  c->add_option("--join-timeout", o->join_timeout_s, "worker: seconds to keep trying to reach the router")
      ->capture_default_str();
  c->add_option("--port-file", o->port_file, "write the bound ports here once listening");
  add_engine_options(c, o.get());
  add_router_options(c, o.get());
  add_cluster_options(c, o.get());
  return [o, roles]() {
    std::stringstream ss(*roles);
    std::string role;
    while (std::getline(ss, role, ',')) {
      if (role == "router") {
        o->router = true;
      } else if (role == "worker") {
        o->worker = true;
      } else if (role == "cache") {
        o->cache = true;
      } else {
        std::fprintf(stderr, "error: --roles: unknown role '%s' (roles: router, worker, cache)\n", role.c_str());
        return 2;
      }
    }
    capture_stop_signals();
    return run_node(*o);
  };
}

}  // namespace troupe::cli
