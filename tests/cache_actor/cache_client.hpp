// Talks to cache actors from a test as the router would: lookups and stats by request/receive, stores
// by send, and an actor system that sends every spawned cache an exit before it shuts down.
#pragma once

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <chrono>
#include <vector>

#include "cache_actor/cache_actor.hpp"
#include "common/cluster_config.hpp"

namespace troupe::cache::test {

class cache_system {
 public:
  cache_system() = default;
  ~cache_system() {
    // A cache with Redis keeps a timer: it ends only when told to (see cache_actor.hpp).
    for (auto& c : caches_) caf::anon_send_exit(c, caf::exit_reason::user_shutdown);
  }

  cluster::cache_actor spawn(cache_options o, metrics_registry* metrics = nullptr) {
    caches_.push_back(spawn_cache(system_, std::move(o), metrics));
    return caches_.back();
  }

  cluster::cache_lookup lookup(const cluster::cache_actor& c, const cluster::cache_key& key) {
    cluster::cache_lookup out;
    self_->request(c, std::chrono::seconds(10), cluster::lookup_atom::value, key)
        .receive([&out](cluster::cache_lookup& r) { out = std::move(r); },
                 [this](caf::error& e) { ADD_FAILURE() << "lookup: " << system_.render(e); });
    return out;
  }

  void store(const cluster::cache_actor& c, const cluster::cache_key& key, const cluster::cache_entry& entry) {
    self_->send(c, cluster::store_atom::value, key, entry);
  }

  // Also a barrier: the cache has handled everything this client sent it before.
  cluster::cache_stats stats(const cluster::cache_actor& c) {
    cluster::cache_stats out;
    self_->request(c, std::chrono::seconds(10), cluster::stats_atom::value)
        .receive([&out](cluster::cache_stats& s) { out = s; },
                 [this](caf::error& e) { ADD_FAILURE() << "stats: " << system_.render(e); });
    return out;
  }

 private:
  cluster::node_config config_;
  caf::actor_system system_{config_};
  caf::scoped_actor self_{system_};
  std::vector<cluster::cache_actor> caches_;
};

}  // namespace troupe::cache::test
