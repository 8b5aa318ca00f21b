// The router actor: the cluster's registry of shard groups (each monitored: a group whose node dies
// or disconnects is removed at once), routing through a routing_policy, and the streams back to the
// front ends of this node. A group is sent at most its max_running sequences plus `group_queue`;
// the requests beyond wait here, in a fair queue over tenants (router/fair_queue.hpp), and go out
// as the groups finish requests; a light tenant's request beside busy ones goes at once, with a
// better priority. Each request's deadline (request::deadline_ms) is enforced here. A request whose group dies (or stops at its drain deadline) is routed
// again: one that had streamed is resumed after the tokens its client already has (n = 1; the
// prompt plus those tokens is prefilled on the new group), so the client sees one stream.
// With a cache, a request that carries a cache key is looked up first: a hit is replayed to the
// front end and never reaches a group; a request that ends normally (every sample by stop or
// length, none cut short at the front end) is stored.
#pragma once

#include <caf/actor_system.hpp>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/actors.hpp"
#include "common/metrics.hpp"
#include "router/cluster_view.hpp"
#include "router/fair_queue.hpp"
#include "router/routing_policy.hpp"

namespace troupe::router {

struct router_options {
  std::string revision;                    // the only model revision this router routes to
  std::shared_ptr<routing_policy> policy;  // used by the actor only
  int32_t max_retries = 2;                 // re-routes of a request whose group died before its first token
  cluster::cache_actor cache;              // asked before routing a request that has a cache key; may be invalid
  std::chrono::milliseconds cache_timeout{250};  // a cache that does not answer in time is a miss
  metrics_registry* metrics = nullptr;     // may be null; outlives the actor
  int32_t group_queue = 4;                 // sequences a group is sent beyond its max_running
  std::map<std::string, double> tenant_weights;  // fair-queue weight per API key label (else 1)
  // Scale from zero (an autoscaler starts groups on demand): a request that finds no serving group
  // waits up to hold_s for one (0: refused at once), at most hold_max such requests at a time;
  // past either, 503 with Retry-After from the cluster view's measured cold start.
  double hold_s = 0;
  int32_t hold_max = 64;
};

// Hands a request's chunk to this node's front ends (frontend/core's stream_registry::deliver);
// false when nobody listens for that request any more. Called on the router actor's thread.
using chunk_delivery = std::function<bool(cluster::token_chunk)>;

[[nodiscard]] cluster::router_actor spawn_router(caf::actor_system& system, router_options options,
                                                 chunk_delivery deliver, std::shared_ptr<cluster_view> view);

}  // namespace troupe::router
