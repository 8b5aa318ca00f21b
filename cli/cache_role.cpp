// The response cache role (see cache_role.hpp).
#include "cli/cache_role.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>

#include "cache_actor/cache_actor.hpp"
#include "common/tls/cluster_tls.hpp"

namespace troupe::cli {

using namespace troupe::cluster;

expected<std::unique_ptr<cache_role>> cache_role::start(node_env& env) {
  const node_options& o = env.options;
  auto role = std::unique_ptr<cache_role>(new cache_role());
  if (o.router && !o.cache_node.empty()) {  // the cache of a `--roles cache` node
    auto at = parse_host_port(o.cache_node, "--cache-node");
    if (!at) return at.err();
    auto c = tls::connect_over_cluster<cache_actor>(env.system, *at);
    if (!c) return fail("--cache-node " + o.cache_node + ": " + env.system.render(c.error()));
    role->cache_ = *c;
    return role;
  }
  // Here when this node has the cache role, or is a router without --no-cache or --cache-node.
  if (!(o.cache || (o.router && !o.no_cache))) return std::unique_ptr<cache_role>();
  cache::cache_options co;
  co.max_bytes = o.cache_max_bytes;
  co.ttl = std::chrono::seconds(o.cache_ttl_s);
  co.redis = o.cache_redis;
  if (auto ok = cache::validate(co); !ok) return ok.err();
  role->cache_ = cache::spawn_cache(env.system, co, &env.metrics);
  role->owned_ = true;
  if (o.cache && !o.router) {  // a cache node: routers reach its actor on the cluster port
    auto listen = parse_host_port(o.listen, "--listen");
    if (!listen) return listen.err();
    auto port = tls::publish_on_cluster(env.system, role->cache_, *listen);
    if (!port) return fail("--listen " + o.listen + ": " + env.system.render(port.error()));
    env.ports.cluster = *port;
    spdlog::info("response cache on cluster port {}:{} ({} bytes, ttl {} s{}{})", listen->host, env.ports.cluster,
                 co.max_bytes, o.cache_ttl_s, co.redis.empty() ? "" : ", redis ", co.redis);
  }
  return role;
}

cache_role::~cache_role() {
  if (owned_ && cache_) caf::anon_send_exit(cache_, caf::exit_reason::user_shutdown);
}

}  // namespace troupe::cli
