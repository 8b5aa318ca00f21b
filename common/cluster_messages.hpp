// The messages the cluster's roles exchange over CAF besides the request itself (common/request.hpp):
// the token chunks a shard group streams back, its registration and its load reports, the cache's.
//
// Every type has an inspect() (CAF 0.17: fields in declaration order; the comment on each field is
// its name on the wire) and is registered once in cluster_config.cpp. Adding a field changes the wire
// format: every node of a cluster must run the same build.
#pragma once

#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common/failure.hpp"
#include "common/finish_reason.hpp"
#include "common/request.hpp"

namespace troupe::cluster {

// Atoms (at most 10 characters each, CAF 0.17).
using generate_atom = caf::atom_constant<caf::atom("generate")>;
using abort_atom = caf::atom_constant<caf::atom("abort")>;
using tokens_atom = caf::atom_constant<caf::atom("tokens")>;
using load_atom = caf::atom_constant<caf::atom("load")>;
using register_atom = caf::atom_constant<caf::atom("register")>;
using step_atom = caf::atom_constant<caf::atom("step")>;
using tick_atom = caf::atom_constant<caf::atom("tick")>;
using submit_atom = caf::atom_constant<caf::atom("submit")>;
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using store_atom = caf::atom_constant<caf::atom("store")>;
using stats_atom = caf::atom_constant<caf::atom("stats")>;
using rendezvous_atom = caf::atom_constant<caf::atom("rendezvous")>;
using set_key_atom = caf::atom_constant<caf::atom("setkey")>;
using get_key_atom = caf::atom_constant<caf::atom("getkey")>;
using list_atom = caf::atom_constant<caf::atom("list")>;
using subscribe_atom = caf::atom_constant<caf::atom("subscribe")>;
using unsubscribe_atom = caf::atom_constant<caf::atom("unsubscr")>;
using registry_atom = caf::atom_constant<caf::atom("registry")>;
using cordon_atom = caf::atom_constant<caf::atom("cordon")>;
using uncordon_atom = caf::atom_constant<caf::atom("uncordon")>;
using drain_atom = caf::atom_constant<caf::atom("drain")>;
using stop_atom = caf::atom_constant<caf::atom("stop")>;
using leave_atom = caf::atom_constant<caf::atom("leave")>;
using deadline_atom = caf::atom_constant<caf::atom("deadline")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;

// The logprob of one generated token and, when asked for, the top alternatives (best first).
struct token_logprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<int32_t> top_tokens;
  std::vector<float> top_logprobs;
  friend bool operator==(const token_logprob&, const token_logprob&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  return f(caf::meta::type_name("token_logprob"), x.token, x.logprob, x.top_tokens, x.top_logprobs);
}

// One sample's progress in one engine step: its new tokens, and whether (and how) it finished.
// A chunk with finish_reason::error and no tokens for a sample outside 0 .. n-1 (sample -1) is the
// failure of the whole request (refused by its group, no group to run it, its group lost).
struct token_chunk {
  int64_t id = 0;                      // the request's id
  int32_t sample = 0;                  // 0 .. n-1; -1: the whole request
  std::vector<int32_t> tokens;
  std::vector<token_logprob> logprobs; // one per token when asked for
  finish_reason finish = finish_reason::none;
  failure error;                       // with finish_reason::error
  friend bool operator==(const token_chunk&, const token_chunk&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_chunk& x) {
  return f(caf::meta::type_name("token_chunk"), x.id, x.sample, x.tokens, x.logprobs, x.finish, x.error);
}

// The chunk that ends request `id` with `why`.
[[nodiscard]] inline token_chunk failed_chunk(int64_t id, failure why) {
  token_chunk c;
  c.id = id;
  c.sample = -1;
  c.finish = finish_reason::error;
  c.error = std::move(why);
  return c;
}

// What a shard group tells the router when it joins.
struct group_info {
  std::string name;                    // unique in the cluster, e.g. "host:pid/0"
  std::string model;                   // the served model's name (its folder or file name)
  std::string revision;                // identifies the weights: requests are routed to groups of the router's revision
  int64_t max_context = 0;             // positions per sequence
  int32_t block_size = 16;             // KV block size (prefix-affinity routing hashes whole blocks)
  int64_t kv_capacity_tokens = 0;      // positions the paged KV cache holds
  int32_t max_running = 0;             // sequences per step
  int32_t tp = 1;                      // ranks in the group
  friend bool operator==(const group_info&, const group_info&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_info& x) {
  return f(caf::meta::type_name("group_info"), x.name, x.model, x.revision, x.max_context, x.block_size,
           x.kv_capacity_tokens, x.max_running, x.tp);
}

// A shard group's load, published every second.
struct load_report {
  std::string group;                   // group_info::name
  int32_t running = 0;
  int32_t waiting = 0;
  int32_t kv_blocks_used = 0;
  int32_t kv_blocks_total = 0;
  int64_t preemptions = 0;
  double prefix_hit_rate = 0;
  int64_t generated_tokens = 0;        // since start
  double tokens_per_s = 0;             // over the last report interval
  // From a request's arrival at the group to its first token (queueing plus prefill): the p90 of
  // those that got it during the last interval, or the age of the oldest still waiting if larger.
  double queue_delay_p90_s = 0;
  friend bool operator==(const load_report&, const load_report&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, load_report& x) {
  return f(caf::meta::type_name("load_report"), x.group, x.running, x.waiting, x.kv_blocks_used,
           x.kv_blocks_total, x.preemptions, x.prefix_hit_rate, x.generated_tokens, x.tokens_per_s,
           x.queue_delay_p90_s);
}

// A shard group's state in the registry. Only serving groups are routed new requests; cordoned and
// draining ones finish what they run. A draining group is told to stop once it runs nothing.
enum class group_state : int8_t { serving = 0, cordoned = 1, draining = 2 };

// "serving", "cordoned", "draining"; a value from the wire outside the list reads "unknown".
[[nodiscard]] constexpr const char* to_string(group_state s) {
  switch (s) {
    case group_state::serving: return "serving";
    case group_state::cordoned: return "cordoned";
    case group_state::draining: return "draining";
  }
  return "unknown";
}

// A shard group as the registry lists it.
struct group_status {
  group_info info;
  group_state state = group_state::serving;
  load_report load;                    // the last report (zeros until the first)
  int64_t in_flight = 0;               // requests routed to it and not finished
  int64_t outstanding_tokens = 0;      // prompt + max_tokens of those, less what they generated
  int64_t routed = 0;                  // requests routed to it since it joined
  friend bool operator==(const group_status&, const group_status&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, group_status& x) {
  return f(caf::meta::type_name("group_status"), x.info, x.state, x.load, x.in_flight, x.outstanding_tokens,
           x.routed);
}

// What changed in the registry. `load` events come with each group's load report (every second).
enum class registry_change : int8_t { joined = 0, left = 1, load = 2, state = 3 };

[[nodiscard]] constexpr const char* to_string(registry_change c) {
  switch (c) {
    case registry_change::joined: return "joined";
    case registry_change::left: return "left";
    case registry_change::load: return "load";
    case registry_change::state: return "state";
  }
  return "unknown";
}

struct registry_event {
  registry_change change = registry_change::load;
  group_status group;                  // as it is after the change (as it was last, for `left`)
  std::string reason;                  // left: why ("drained", or its node's exit reason)
  friend bool operator==(const registry_event&, const registry_event&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, registry_event& x) {
  return f(caf::meta::type_name("registry_event"), x.change, x.group, x.reason);
}

// The response cache's exact-match key: a canonical encoding of the model revision and every part of a
// request that decides its output (prompt ids, sampling parameters, seed, stop rules, max tokens, n,
// logprobs). Empty bytes: the request is not to be cached (not deterministic, or bypassed).
struct cache_key {
  std::string bytes;                   // the canonical encoding (compared exactly)
  uint64_t hash = 0;                   // XXH3-64 of bytes
  friend bool operator==(const cache_key&, const cache_key&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_key& x) {
  return f(caf::meta::type_name("cache_key"), x.bytes, x.hash);
}

// A stored completion: one chunk per sample holding all its tokens (and logprobs) and how it
// finished (stop or length). A hit is replayed as these chunks, so clients see it as a stream.
struct cache_entry {
  std::vector<token_chunk> samples;
  friend bool operator==(const cache_entry&, const cache_entry&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_entry& x) {
  return f(caf::meta::type_name("cache_entry"), x.samples);
}

// A lookup's answer.
struct cache_lookup {
  bool hit = false;
  cache_entry entry;                   // when hit
  friend bool operator==(const cache_lookup&, const cache_lookup&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_lookup& x) {
  return f(caf::meta::type_name("cache_lookup"), x.hit, x.entry);
}

// The cache's counters since start.
struct cache_stats {
  int64_t hits = 0;                    // memory and Redis hits
  int64_t misses = 0;
  int64_t evictions = 0;               // by bytes or TTL
  int64_t entries = 0;                 // in memory now
  int64_t bytes = 0;                   // in memory now (keys and entries)
  int64_t redis_hits = 0;
  int64_t redis_errors = 0;
  bool redis_connected = false;
  friend bool operator==(const cache_stats&, const cache_stats&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_stats& x) {
  return f(caf::meta::type_name("cache_stats"), x.hits, x.misses, x.evictions, x.entries, x.bytes, x.redis_hits,
           x.redis_errors, x.redis_connected);
}

}  // namespace troupe::cluster
