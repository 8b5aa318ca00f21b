// The response cache actor over the memory and Redis tiers (see cache_actor.hpp).
#include "cache_actor/cache_actor.hpp"

#include <spdlog/spdlog.h>

#include <caf/all.hpp>
#include <algorithm>
#include <memory>

#include "cache_actor/lru_cache.hpp"
#include "cache_actor/redis_tier.hpp"
#include "common/cluster_config.hpp"

namespace troupe::cache {

using namespace cluster;

namespace {

constexpr auto maintain_interval = std::chrono::seconds(1);
// Redis values are read whole into memory: the bound is the memory tier's, capped here.
constexpr int64_t max_redis_value_bytes = int64_t(64) << 20;

// The actor's real interface: the public one plus its own timer (a handle to it converts to
// cluster::cache_actor, a subset). A peer sending tick only makes it check Redis early.
using cache_impl = cache_actor::extend<caf::reacts_to<tick_atom>>;

struct cache_metrics {
  counter* hits = nullptr;
  counter* misses = nullptr;
  counter* evictions = nullptr;
  counter* redis_errors = nullptr;
  gauge* bytes = nullptr;
  gauge* entries = nullptr;
  gauge* redis_connected = nullptr;
};

cache_metrics make_metrics(metrics_registry* m) {
  if (m == nullptr) return {};
  return {
      &m->counter("troupe_cache_hits_total", "Response cache lookups answered (memory or Redis)."),
      &m->counter("troupe_cache_misses_total", "Response cache lookups not answered."),
      &m->counter("troupe_cache_evictions_total", "Response cache entries evicted from memory (bytes bound or TTL)."),
      &m->counter("troupe_cache_redis_errors_total", "Response cache Redis failures (connects, commands, bad values)."),
      &m->gauge("troupe_cache_bytes", "Response cache memory in use (estimated bytes of keys and entries)."),
      &m->gauge("troupe_cache_entries", "Response cache entries in memory."),
      &m->gauge("troupe_cache_redis_connected", "1 while the response cache's Redis tier is connected."),
  };
}

struct cache_state {
  std::unique_ptr<lru_cache> memory;
  std::unique_ptr<redis_tier> redis;  // null: memory only
  std::chrono::seconds ttl{0};
  int64_t misses = 0;                 // lookups neither tier answered
  cache_metrics metrics;
  cache_stats published;              // what the counters already hold
  static inline const char* name = "troupe.cache";
};

using cache_ptr = cache_impl::stateful_pointer<cache_state>;

cache_stats current_stats(const cache_state& st) {
  const lru_counters& c = st.memory->counters();
  cache_stats s;
  s.redis_hits = st.redis ? st.redis->hits() : 0;
  s.hits = c.hits + s.redis_hits;
  s.misses = st.misses;
  s.evictions = c.evictions_bytes + c.evictions_ttl;
  s.entries = st.memory->entries();
  s.bytes = st.memory->bytes();
  s.redis_errors = st.redis ? st.redis->errors() : 0;
  s.redis_connected = st.redis && st.redis->connected();
  return s;
}

// Brings the Prometheus series up to date with the counters (called after every message).
void publish(cache_state& st) {
  if (st.metrics.hits == nullptr) return;
  const cache_stats now = current_stats(st);
  const cache_stats& was = st.published;
  st.metrics.hits->inc(double(now.hits - was.hits));
  st.metrics.misses->inc(double(now.misses - was.misses));
  st.metrics.evictions->inc(double(now.evictions - was.evictions));
  st.metrics.redis_errors->inc(double(now.redis_errors - was.redis_errors));
  st.metrics.bytes->set(double(now.bytes));
  st.metrics.entries->set(double(now.entries));
  st.metrics.redis_connected->set(now.redis_connected ? 1 : 0);
  st.published = now;
}

cache_lookup lookup(cache_state& st, const cache_key& key) {
  if (key.bytes.empty()) return {};
  if (auto e = st.memory->get(key)) return {true, std::move(*e)};
  if (st.redis) {
    if (auto h = st.redis->get(key)) {
      st.memory->put(key, h->entry, h->ttl_left);
      return {true, std::move(h->entry)};
    }
  }
  ++st.misses;
  return {};
}

void store(cache_state& st, const cache_key& key, cache_entry& entry) {
  if (key.bytes.empty()) return;
  for (auto& s : entry.samples) s.id = 0;  // a hit belongs to whichever request asks
  // Too large for memory is not stored at all (nor shared): a router could not keep it either.
  if (entry_size(key, entry) > st.memory->max_bytes()) {
    (void)st.memory->put(key, std::move(entry));  // counted as rejected; drops an older entry
    return;
  }
  if (st.redis) st.redis->set(key, entry, st.ttl);
  (void)st.memory->put(key, std::move(entry));
}

}  // namespace

expected<void> validate(const cache_options& options) {
  if (options.max_bytes <= 0)
    return fail("--cache-max-bytes: " + std::to_string(options.max_bytes) + " is not a positive number of bytes");
  if (options.ttl.count() < 0)
    return fail("--cache-ttl: " + std::to_string(options.ttl.count()) + " is negative (0 = entries never expire)");
  if (options.redis_timeout.count() <= 0) return fail("the response cache's Redis timeout must be positive");
  if (!options.redis.empty()) {
    auto hp = parse_host_port(options.redis, "--cache-redis");
    if (!hp) return hp.err();
    if (hp->port == 0) return fail("--cache-redis: '" + options.redis + "' needs a port number above 0");
  }
  return {};
}

cache_actor spawn_cache(caf::actor_system& system, cache_options options, metrics_registry* metrics) {
  auto fn = [](cache_ptr self, cache_options o, cache_metrics m) -> cache_impl::behavior_type {
    auto& st = self->state;
    if (auto ok = validate(o); !ok) {
      // The CLI validates first; here an invalid option is clamped so the actor still serves.
      spdlog::error("response cache: {}; using defaults where invalid, memory only if Redis is", ok.message());
      if (o.max_bytes <= 0) o.max_bytes = cache_options{}.max_bytes;
      if (o.ttl.count() < 0) o.ttl = cache_options{}.ttl;
      if (o.redis_timeout.count() <= 0) o.redis_timeout = cache_options{}.redis_timeout;
      if (!o.redis.empty() && !validate(cache_options{1, {}, o.redis, o.redis_timeout})) o.redis.clear();
    }
    st.memory = std::make_unique<lru_cache>(o.max_bytes, o.ttl);
    st.ttl = o.ttl;
    st.metrics = m;
    if (!o.redis.empty()) {
      auto hp = parse_host_port(o.redis, "--cache-redis");
      redis_options ro;
      ro.host = hp->host;
      ro.port = hp->port;
      ro.timeout = o.redis_timeout;
      ro.max_value_bytes = std::min(o.max_bytes, max_redis_value_bytes);
      st.redis = std::make_unique<redis_tier>(std::move(ro));
      self->delayed_send(self, maintain_interval, tick_atom::value);
    }
    publish(st);
    return {
        [self](lookup_atom, const cache_key& key) -> cache_lookup {
          auto result = lookup(self->state, key);
          publish(self->state);
          return result;
        },
        [self](store_atom, const cache_key& key, cache_entry& entry) {
          store(self->state, key, entry);
          publish(self->state);
        },
        [self](stats_atom) -> cache_stats {
          publish(self->state);
          return current_stats(self->state);
        },
        [self](tick_atom) {
          if (!self->state.redis) return;
          self->state.redis->maintain();
          publish(self->state);
          // Only the actor's own timer re-arms: a peer's tick must not start a second one.
          if (self->current_sender() == self->ctrl()) self->delayed_send(self, maintain_interval, tick_atom::value);
        },
    };
  };
  // Scheduled, not detached (as the shard group's leader): CAF 0.17 can keep a stopped detached
  // actor alive while a remote node held its handle, and ~actor_system then waits for it forever
  // (a cache node hung on SIGTERM about once in 12 runs under load after a router had used it).
  // A Redis call blocks its scheduler thread for at most the Redis timeout; nodes with a Redis tier
  // run one scheduler thread more for it (cli/node.cpp).
  return system.spawn(fn, std::move(options), make_metrics(metrics));
}

}  // namespace troupe::cache
