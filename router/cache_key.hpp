// Which requests the response cache may answer, and their exact-match key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/cluster_messages.hpp"

namespace troupe::router {

// Deterministic requests only (greedy, or an explicit seed), unless the operator allows any.
[[nodiscard]] bool cacheable(const request& r, bool allow_nondeterministic);

// The key: the model revision and every field of `r` that decides its output (all but its id and
// priority), encoded canonically (fixed order, fixed widths, lengths before variable parts), with
// its XXH3-64 hash.
[[nodiscard]] cluster::cache_key make_cache_key(std::string_view revision, const request& r);

}  // namespace troupe::router
