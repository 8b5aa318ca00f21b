// The messages the cluster's roles exchange over CAF: a generation request as a shard group sees it
// (token ids only), the token chunks it streams back, its registration and its load reports.
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

// A request as a shard group runs it: already tokenized and validated by the router.
struct generate_request {
  int64_t id = 0;                      // unique in the cluster: the router's 32-bit nonce << 32 | a counter
  std::vector<int32_t> prompt;         // token ids
  int32_t max_tokens = 16;
  float temperature = 1.0f;            // 0 = greedy
  float top_p = 1.0f;
  int32_t top_k = 0;
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;
  float presence_penalty = 0.0f;
  float frequency_penalty = 0.0f;
  bool has_seed = false;
  uint64_t seed = 0;
  int32_t logprobs = -1;               // -1 none, 0 chosen token, N plus the top N
  std::vector<int32_t> stop_token_ids; // besides the model's eos (unless ignore_eos)
  bool ignore_eos = false;
  int32_t priority = 0;                // lower runs first
  int32_t n = 1;                       // parallel samples
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_request& x) {
  return f(caf::meta::type_name("generate_request"), x.id, x.prompt, x.max_tokens, x.temperature, x.top_p,
           x.top_k, x.min_p, x.repetition_penalty, x.presence_penalty, x.frequency_penalty, x.has_seed, x.seed,
           x.logprobs, x.stop_token_ids, x.ignore_eos, x.priority, x.n);
}

// The logprob of one generated token and, when asked for, the top alternatives (best first).
struct token_logprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<int32_t> top_tokens;
  std::vector<float> top_logprobs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  return f(caf::meta::type_name("token_logprob"), x.token, x.logprob, x.top_tokens, x.top_logprobs);
}

// How a sample ended; none while it runs. Mirrors engine_finish.
enum class finish_kind : int8_t { none = -1, stop = 0, length = 1, abort = 2, error = 3 };

// One sample's progress in one engine step: its new tokens, and whether (and how) it finished.
struct token_chunk {
  int64_t id = 0;                      // the generate_request's id
  int32_t sample = 0;                  // 0 .. n-1
  std::vector<int32_t> tokens;
  std::vector<token_logprob> logprobs; // one per token when asked for
  int8_t finish = -1;                  // a finish_kind
  std::string error;                   // with finish_kind::error
  int32_t status = 0;                  // with an error, its HTTP-like class: 400 the request was refused
                                       // (e.g. too long for the cache), 503 no group could run it, 500 a failure
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_chunk& x) {
  return f(caf::meta::type_name("token_chunk"), x.id, x.sample, x.tokens, x.logprobs, x.finish, x.error,
           x.status);
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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, load_report& x) {
  return f(caf::meta::type_name("load_report"), x.group, x.running, x.waiting, x.kv_blocks_used,
           x.kv_blocks_total, x.preemptions, x.prefix_hit_rate, x.generated_tokens, x.tokens_per_s);
}

// The response cache's exact-match key: a canonical encoding of the model revision and every part of a
// request that decides its output (prompt ids, sampling parameters, seed, stop rules, max tokens, n,
// logprobs). Empty bytes: the request is not to be cached (not deterministic, or bypassed).
struct cache_key {
  std::string bytes;                   // the canonical encoding (compared exactly)
  uint64_t hash = 0;                   // XXH3-64 of bytes
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_key& x) {
  return f(caf::meta::type_name("cache_key"), x.bytes, x.hash);
}

// A stored completion: one chunk per sample holding all its tokens (and logprobs) and how it
// finished (stop or length). A hit is replayed as these chunks, so clients see it as a stream.
struct cache_entry {
  std::vector<token_chunk> samples;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_entry& x) {
  return f(caf::meta::type_name("cache_entry"), x.samples);
}

// A lookup's answer.
struct cache_lookup {
  bool hit = false;
  cache_entry entry;                   // when hit
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
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, cache_stats& x) {
  return f(caf::meta::type_name("cache_stats"), x.hits, x.misses, x.evictions, x.entries, x.bytes, x.redis_hits,
           x.redis_errors, x.redis_connected);
}

}  // namespace troupe::cluster
