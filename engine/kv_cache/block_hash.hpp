// Content hashes of full KV blocks for automatic prefix caching. A block's hash chains its parent
// block's hash with its own token ids, and the first block's parent is a root hash of the model
// revision, so equal hashes mean (with overwhelming probability) equal whole prefixes of one model.
// XXH3-64 (libxxhash): the parent hash is the seed, the token ids (int32, host byte order) the input.
// The hash only finds a candidate: the pool also compares token ids and the parent link, so a
// collision costs a cache miss, never wrong KV. Pure functions: safe from any thread.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace troupe::engine {

// hash(parent, tokens): injectable so that tests can force collisions with a tiny hash.
using block_hash_fn = uint64_t (*)(uint64_t parent, std::span<const int32_t> tokens);

// The root hash for a model revision (e.g. "<model path>@<checkpoint sha>"): never 0.
[[nodiscard]] uint64_t revision_root_hash(std::string_view model_revision);

// XXH3-64 of the token ids, seeded with the parent hash. The default block_hash_fn.
[[nodiscard]] uint64_t xxh3_block_hash(uint64_t parent, std::span<const int32_t> tokens);

}  // namespace troupe::engine
