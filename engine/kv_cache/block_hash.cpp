// XXH3-64 block hashes (see block_hash.hpp).
#include "engine/kv_cache/block_hash.hpp"

#include <xxhash.h>

namespace troupe::engine {

uint64_t revision_root_hash(std::string_view model_revision) {
  // A fixed seed keeps the root apart from block hashes seeded with small parents.
  const uint64_t h = XXH3_64bits_withSeed(model_revision.data(), model_revision.size(),
                                          0x74726f7570652d31ULL /* "troupe-1" */);
  return h == 0 ? 1 : h;
}

uint64_t xxh3_block_hash(uint64_t parent, std::span<const int32_t> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent);
}

}  // namespace troupe::engine
