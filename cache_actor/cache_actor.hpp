// The response cache actor: exact-match lookups before routing and stores after a request ends, over
// an in-memory LRU (bytes, TTL) and an optional Redis tier shared by several routers.
//
// Lookup: memory first; on a miss, Redis (when configured), whose hit is put into memory too (for
// what remains of its Redis TTL). Store: memory, and Redis SET EX ttl. Hits carry token_chunk::id 0:
// the router sets its own request's id. An empty key (not cacheable) is a miss and is never stored.
// Threading: the actor is scheduled; a Redis call blocks its scheduler thread for at most
// redis_timeout (nodes with a Redis tier run one scheduler thread more), and it handles one message
// at a time, so a lookup queued behind a slow Redis call
// waits for it. Redis trouble is never an error to the caller: it serves from memory meanwhile.
// Lifetime: with Redis configured the actor keeps a 1 s timer (reconnects, the connected gauge), so
// it lives until sent an exit message (caf::anon_send_exit); memory-only, it ends with its last handle.
#pragma once

#include <caf/actor_system.hpp>
#include <chrono>
#include <cstdint>
#include <string>

#include "common/actors.hpp"
#include "common/expected.hpp"
#include "common/metrics.hpp"

namespace troupe::cache {

struct cache_options {
  int64_t max_bytes = int64_t(256) << 20;   // --cache-max-bytes
  std::chrono::seconds ttl{3600};           // --cache-ttl; 0 = entries never expire
  std::string redis;                        // --cache-redis HOST:PORT; empty = memory only
  std::chrono::milliseconds redis_timeout{100};
};

// max_bytes > 0, ttl >= 0, redis_timeout > 0, redis empty or HOST:PORT with a port > 0. The CLI calls
// it before spawn_cache (which asserts it).
[[nodiscard]] expected<void> validate(const cache_options& options);

// Spawns the cache actor (scheduled; see Threading above: why not detached is in cache_actor.cpp). `metrics` (may be null; must outlive the actor)
// gets troupe_cache_hits_total, _misses_total, _evictions_total, troupe_cache_bytes,
// troupe_cache_entries, troupe_cache_redis_errors_total, troupe_cache_redis_connected.
[[nodiscard]] cluster::cache_actor spawn_cache(caf::actor_system& system, cache_options options,
                                               metrics_registry* metrics);

}  // namespace troupe::cache
