// The router actor (see router_actor.hpp).
#include "router/router_actor.hpp"

#include <caf/all.hpp>
#include <map>
#include <unordered_map>
#include <xxhash.h>

namespace troupe::router {

using namespace cluster;

namespace {

struct group_entry {
  group_info info;
  gpu_leader_actor leader;
  load_report load;
  uint64_t key = 0;  // for the policy's hash ring
  int64_t outstanding_tokens = 0;
  int64_t in_flight = 0;
  int64_t routed = 0;
};

struct flight {
  generate_request req;
  cache_key key;             // empty: not to be cached
  std::vector<token_chunk> stored;  // with a key: each sample's whole output so far, to store at the end
  std::chrono::steady_clock::time_point looked_up;  // when the cache lookup was sent
  std::string group;         // where it runs (empty while the cache is being asked)
  bool streamed = false;     // a token reached the client: it cannot be retried elsewhere
  int32_t unfinished = 1;    // samples still running
  int32_t retries = 0;
  int64_t outstanding = 0;   // what it still adds to its group's outstanding_tokens
};

struct router_state {
  router_options options;
  histogram* hit_latency = nullptr;  // lookup sent -> hit replayed
  counter* stores = nullptr;
  std::shared_ptr<stream_registry> streams;
  std::shared_ptr<cluster_view> view;
  std::map<std::string, group_entry> groups;  // by name
  std::unordered_map<int64_t, flight> flights;
  // Where the ranks of each forming or running tensor-parallel group meet, by group name (the
  // leader's store actor, monitored: removed when its node goes away).
  std::map<std::string, rendezvous_actor> rendezvous;
  static inline const char* name = "troupe.router";
};

using router_ptr = router_actor::stateful_pointer<router_state>;

void publish(router_ptr self) {
  std::vector<group_snapshot> snap;
  for (const auto& [name, g] : self->state.groups)
    snap.push_back({g.info, g.load, g.outstanding_tokens, g.in_flight, g.routed});
  self->state.view->set(std::move(snap));
}

void fail_request(router_ptr self, int64_t id, int32_t status, std::string why) {
  token_chunk c;
  c.id = id;
  c.finish = int8_t(finish_kind::error);
  c.error = std::move(why);
  c.status = status;
  self->state.streams->deliver(std::move(c));
}

// Takes the request off its group's books.
void settle(router_state& st, flight& f) {
  auto g = st.groups.find(f.group);
  if (g == st.groups.end()) return;
  g->second.outstanding_tokens -= f.outstanding;
  g->second.in_flight -= 1;
  f.outstanding = 0;
}

// Routes `f` (not yet on any group's books) and sends it; false when no group is live.
bool dispatch(router_ptr self, flight& f) {
  auto& st = self->state;
  std::vector<group_load> loads;
  std::vector<group_entry*> entries;
  for (auto& [name, g] : st.groups) {
    const double kv = g.load.kv_blocks_total > 0 ? double(g.load.kv_blocks_used) / g.load.kv_blocks_total : 0;
    loads.push_back({g.key, g.outstanding_tokens, g.load.running, g.load.waiting, kv});
    entries.push_back(&g);
  }
  const auto pick = st.options.policy->choose(loads, f.req.prompt);
  if (!pick) return false;
  group_entry& g = *entries[*pick];
  f.group = g.info.name;
  f.outstanding = int64_t(f.req.prompt.size()) + int64_t(f.req.max_tokens) * std::max(f.req.n, 1);
  g.outstanding_tokens += f.outstanding;
  g.in_flight += 1;
  g.routed += 1;
  self->send(g.leader, generate_atom::value, f.req, caf::actor_cast<token_sink_actor>(self));
  publish(self);  // a few groups' figures: cheap, and /metrics and routing stats stay current
  return true;
}

// Adds a chunk's tokens to the sample's record for the cache.
void remember(flight& f, const token_chunk& c) {
  if (c.sample < 0 || c.sample >= std::max(f.req.n, 1)) return;
  if (f.stored.empty()) f.stored.resize(size_t(std::max(f.req.n, 1)));
  token_chunk& s = f.stored[size_t(c.sample)];
  s.sample = c.sample;
  s.tokens.insert(s.tokens.end(), c.tokens.begin(), c.tokens.end());
  s.logprobs.insert(s.logprobs.end(), c.logprobs.begin(), c.logprobs.end());
  if (c.finish >= 0) s.finish = c.finish;
}

// Stores a finished request when every sample ended normally (stop or length).
void store(router_ptr self, flight& f) {
  auto& st = self->state;
  if (!st.options.cache || f.stored.empty()) return;
  for (const auto& s : f.stored)
    if (s.finish != int8_t(finish_kind::stop) && s.finish != int8_t(finish_kind::length)) return;
  cache_entry e;
  e.samples = std::move(f.stored);
  for (auto& s : e.samples) s.id = 0;
  self->send(st.options.cache, store_atom::value, std::move(f.key), std::move(e));
  if (st.stores) st.stores->inc();
}

void on_chunks(router_ptr self, std::vector<token_chunk>& chunks) {
  auto& st = self->state;
  for (auto& c : chunks) {
    auto it = st.flights.find(c.id);
    if (it == st.flights.end()) continue;  // cancelled meanwhile
    flight& f = it->second;
    if (!c.tokens.empty()) {
      f.streamed = true;
      const int64_t n = std::min<int64_t>(int64_t(c.tokens.size()), f.outstanding);
      f.outstanding -= n;
      if (auto g = st.groups.find(f.group); g != st.groups.end()) g->second.outstanding_tokens -= n;
    }
    if (!f.key.bytes.empty()) remember(f, c);
    const bool done = c.finish >= 0 && --f.unfinished <= 0;
    const int64_t id = c.id;
    const bool listening = st.streams->deliver(std::move(c));
    if (done) {
      settle(st, f);
      if (!f.key.bytes.empty()) store(self, f);
      st.flights.erase(it);
    } else if (!listening) {  // its client is gone: stop spending the group's time on it
      if (auto g = st.groups.find(f.group); g != st.groups.end()) self->send(g->second.leader, abort_atom::value, id);
      settle(st, f);
      st.flights.erase(it);
    }
  }
}

// The cache's answer for a request: a hit is replayed to the front end (one chunk per sample, each
// with all its tokens) and never reaches a group; a miss is routed.
void on_lookup(router_ptr self, int64_t id, cache_lookup& r) {
  auto& st = self->state;
  auto it = st.flights.find(id);
  if (it == st.flights.end()) return;  // cancelled while the cache was asked
  flight& f = it->second;
  // Anyone who can write to a shared Redis can plant an entry: replay only what this request can be.
  if (r.hit && r.entry.samples.size() != size_t(std::max(f.req.n, 1))) r.hit = false;
  for (size_t i = 0; r.hit && i < r.entry.samples.size(); ++i)
    if (r.entry.samples[i].sample != int32_t(i) || r.entry.samples[i].finish < 0) r.hit = false;
  if (r.hit) {
    if (st.hit_latency)
      st.hit_latency->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - f.looked_up).count());
    for (auto& c : r.entry.samples) {
      c.id = id;
      st.streams->deliver(std::move(c));
    }
    st.flights.erase(it);
    return;
  }
  if (!dispatch(self, f)) {
    fail_request(self, id, 503, "no live shard group: the cluster has no worker serving this model yet");
    st.flights.erase(it);
  }
}

void on_group_down(router_ptr self, const caf::actor_addr& who, const caf::error& reason) {
  auto& st = self->state;
  std::erase_if(st.rendezvous, [&who](const auto& e) { return e.second.address() == who; });
  auto g = std::find_if(st.groups.begin(), st.groups.end(),
                        [&who](const auto& e) { return e.second.leader.address() == who; });
  if (g == st.groups.end()) return;
  const std::string name = g->first;
  st.groups.erase(g);
  std::vector<int64_t> ended;
  for (auto& [id, f] : st.flights) {
    if (f.group != name) continue;
    f.outstanding = 0;
    if (!f.streamed && f.retries < st.options.max_retries) {
      ++f.retries;
      if (dispatch(self, f)) continue;
      fail_request(self, id, 503, "shard group " + name + " failed (" + caf::to_string(reason) +
                                      ") and no other live shard group can take the request");
    } else if (f.streamed) {
      fail_request(self, id, 500, "shard group " + name + " failed (" + caf::to_string(reason) +
                                      ") after the request had started streaming; its output cannot be resumed");
    } else {
      fail_request(self, id, 503, "shard group " + name + " failed and the request was already retried " +
                                      std::to_string(f.retries) + " times");
    }
    ended.push_back(id);
  }
  for (int64_t id : ended) st.flights.erase(id);
  publish(self);
}

}  // namespace

router_actor spawn_router(caf::actor_system& system, router_options options, std::shared_ptr<stream_registry> streams,
                          std::shared_ptr<cluster_view> view) {
  auto fn = [](router_ptr self, router_options opts, std::shared_ptr<stream_registry> reg,
               std::shared_ptr<cluster_view> v) -> router_actor::behavior_type {
    self->state.options = std::move(opts);
    self->state.streams = std::move(reg);
    self->state.view = std::move(v);
    if (auto* m = self->state.options.metrics) {
      self->state.hit_latency = &m->histogram("troupe_cache_hit_latency_seconds",
                                              "Router time from the cache lookup to replaying a hit.",
                                              exponential_buckets(1e-5, 2, 16));
      self->state.stores = &m->counter("troupe_cache_stores_total", "Finished requests sent to the cache.");
    }
    self->set_down_handler([self](caf::down_msg& dm) { on_group_down(self, dm.source, dm.reason); });
    return {
        [self](register_atom, group_info& info, gpu_leader_actor& leader) -> caf::result<bool> {
          auto& st = self->state;
          if (info.revision != st.options.revision)
            return caf::make_error(caf::sec::runtime_error,
                                   "shard group " + info.name + " serves model revision '" + info.revision +
                                       "' but this router serves '" + st.options.revision + "'");
          if (!leader) return caf::make_error(caf::sec::runtime_error, "shard group " + info.name + " sent no leader");
          self->monitor(leader);
          group_entry e;
          e.key = XXH3_64bits(info.name.data(), info.name.size());
          e.load.group = info.name;
          e.leader = std::move(leader);
          e.info = std::move(info);
          const std::string name = e.info.name;
          st.groups[name] = std::move(e);
          publish(self);
          return true;
        },
        [self](load_atom, load_report& r) {
          auto g = self->state.groups.find(r.group);
          if (g == self->state.groups.end()) return;
          g->second.load = std::move(r);
          publish(self);
        },
        [self](tokens_atom, std::vector<token_chunk>& chunks) { on_chunks(self, chunks); },
        [self](submit_atom, generate_request& req, cache_key& key) {
          auto& st = self->state;
          flight f;
          f.unfinished = std::max(req.n, 1);
          f.req = std::move(req);
          const int64_t id = f.req.id;
          if (st.options.cache && !key.bytes.empty()) {
            f.key = std::move(key);
            f.looked_up = std::chrono::steady_clock::now();
            auto& entry = st.flights.emplace(id, std::move(f)).first->second;
            self->request(st.options.cache, st.options.cache_timeout, lookup_atom::value, entry.key)
                .then([self, id](cache_lookup& r) { on_lookup(self, id, r); },
                      // An unreachable or slow cache is a miss, never an error to the client.
                      [self, id](caf::error&) {
                        cache_lookup miss;
                        on_lookup(self, id, miss);
                      });
            return;
          }
          if (!dispatch(self, f)) {
            fail_request(self, id, 503, "no live shard group: the cluster has no worker serving this model yet");
            return;
          }
          st.flights.emplace(id, std::move(f));
        },
        [self](cancel_atom, int64_t id) {
          auto& st = self->state;
          auto it = st.flights.find(id);
          if (it == st.flights.end()) return;
          if (auto g = st.groups.find(it->second.group); g != st.groups.end())
            self->send(g->second.leader, abort_atom::value, id);
          settle(st, it->second);
          st.flights.erase(it);
        },
        [self](rendezvous_atom, std::string& group, rendezvous_actor& store) {
          if (!store) return;
          self->monitor(store);
          self->state.rendezvous[std::move(group)] = std::move(store);
        },
        [self](rendezvous_atom, const std::string& group) -> caf::result<rendezvous_actor> {
          auto it = self->state.rendezvous.find(group);
          if (it == self->state.rendezvous.end())
            return caf::make_error(caf::sec::runtime_error, "no shard group '" + group + "' is forming at this router");
          return it->second;
        },
    };
  };
  return system.spawn(fn, std::move(options), std::move(streams), std::move(view));
}

}  // namespace troupe::router
