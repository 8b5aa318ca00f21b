// The binary format of a cache entry in Redis (format version 1), with the full key inside so that a
// reader can tell a hash collision (or a stranger's value) from a hit.
//
// Layout, every integer little-endian, floats as their IEEE-754 bits:
//   "TRCE"  u16 version (1)  u32 K  K bytes: the cache key's bytes
//   u32 S (samples), then per sample:
//     i32 sample (= its index)  i8 finish (0 stop or 1 length)  i32 status
//     u32 T, T x i32 token (>= 0)
//     u32 L (0 or T), L x { i32 token  f32 logprob  u32 N  N x { i32 top token  f32 top logprob } }
//     u32 E, E bytes: the error text
//   nothing after.
// token_chunk::id is not stored (a hit carries id 0; the router sets its own request's id).
// Decoding trusts nothing: every count is checked against the bytes that remain before anything is
// allocated, so a corrupt or hostile value costs at most a small multiple of its own size in memory
// (a 21-byte sample record becomes a token_chunk) and yields an error, never a crash.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/cluster_messages.hpp"
#include "common/expected.hpp"

namespace troupe::cache {

inline constexpr uint16_t entry_format_version = 1;

struct decoded_entry {
  std::string key_bytes;
  cluster::cache_entry entry;
};

// Fails when the entry cannot be written in the format, or is not a finished completion (it could
// not be read back): samples not numbered 0..S-1 in order, one not ended by stop or length, a logprob
// whose top_tokens and top_logprobs differ in length, logprobs neither absent nor one per token, a
// negative token id, or a count over 2^32 - 1.
[[nodiscard]] expected<std::string> encode_entry(std::string_view key_bytes, const cluster::cache_entry& entry);

// The error says what was wrong and where (byte offset), for the log.
[[nodiscard]] expected<decoded_entry> decode_entry(std::string_view bytes);

}  // namespace troupe::cache
