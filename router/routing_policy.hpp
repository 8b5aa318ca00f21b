// Routing policies: which live shard group a new request goes to, from the router's view of each
// group's load and (for prefix affinity) the request's prompt tokens.
//
// Policies:
// - "least-outstanding": the group with the fewest outstanding tokens; ties go to fewer
//   running + waiting requests, then to the lowest index.
// - "prefix-affinity": consistent hashing with bounded loads (Mirrokni, Thorup, Zadimoghaddam,
//   "Consistent Hashing with Bounded Loads", 2018). The key is XXH3-64 of the prompt's leading
//   full blocks (at most affinity_blocks blocks of block_size tokens), so requests that share a
//   system prompt meet the same group's prefix cache. Each group has virtual_nodes points on a ring
//   (hash of its key and the replica index); from the key's point the walk goes clockwise to the
//   first group whose outstanding tokens are <= load_bound x the mean outstanding tokens (the mean
//   counts this request's prompt length + 1, so the bound is never 0). Removing a group moves only
//   the keys that were on it (while loads stay within the bound). A prompt shorter than one block
//   has no key and goes to the least-outstanding group.
//
// Threading: a policy is owned and called by the router actor only; not thread-safe.
// Determinism: the same groups (by key and load) and prompt give the same choice, whatever order
// the groups come in; group keys must be distinct (a duplicate key is reached only at its first
// index).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace troupe::router {

// The router's view of one live shard group.
struct group_load {
  uint64_t key = 0;                  // stable id of the group (hash of its name), used for the hash ring
  int64_t outstanding_tokens = 0;    // prompt tokens not yet prefilled + tokens still to generate, of requests routed to it
  int32_t running = 0, waiting = 0;  // from its last load report
  double kv_used_fraction = 0;       // from its last load report
};

class routing_policy {
 public:
  virtual ~routing_policy() = default;

  // Index into `groups` of the group to send a request with this prompt to; nullopt when groups is
  // empty. Called from the router actor only (not thread-safe).
  [[nodiscard]] virtual std::optional<size_t> choose(std::span<const group_load> groups,
                                                     std::span<const int32_t> prompt) = 0;
  [[nodiscard]] virtual std::string_view name() const = 0;
};

struct routing_options {
  int32_t block_size = 16;      // tokens per affinity block: the engine's KV block size, >= 1
  int32_t affinity_blocks = 4;  // leading full blocks hashed into the key, >= 1
  double load_bound = 1.25;     // the bounded-loads factor c, >= 1 (then some group always fits)
  int32_t virtual_nodes = 64;   // ring points per group, >= 1
};

// "least-outstanding" or "prefix-affinity"; an unknown name or an option out of range is an error
// that says what is accepted.
[[nodiscard]] expected<std::unique_ptr<routing_policy>> make_routing_policy(std::string_view name,
                                                                          routing_options options = {});

}  // namespace troupe::router
