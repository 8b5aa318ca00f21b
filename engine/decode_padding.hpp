// Decode steps as CUDA graphs: a graph replays fixed shapes, so a decode batch is padded up to the
// next of a few batch-size buckets, and one graph per bucket serves every batch that rounds to it
// (vLLM captures the same way). Plain host code: the CPU tests check it.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace troupe::engine {

// The batch sizes graphs are captured for: 1, 2, 4, 8, then multiples of 8. The smallest one of at
// least n (n >= 1).
[[nodiscard]] int64_t graph_bucket(int64_t n);

// Whether a batch is a decode step a graph can run: one token per sequence (no sequence twice),
// and the logits of either every token in order (rows 0..n-1) or of none (a follower rank).
[[nodiscard]] bool is_graph_decode(std::span<const int32_t> token_seq, std::span<const int32_t> logit_rows,
                                   size_t num_tables);

// A decode batch padded to `bucket` tokens. The first n tokens are the batch's own; the others
// (token 0 at position 0) form one extra sequence whose block table is {spare_block}, a block no
// sequence reads (paged_kv::spare_block), so they write K/V only there and attend only to it.
// Holds spans into itself: neither copied nor moved.
struct decode_padding {
  std::vector<int32_t> tokens, pos, token_seq;
  std::vector<std::span<const int32_t>> tables;
  int32_t spare_table[1] = {-1};

  decode_padding() = default;
  decode_padding(const decode_padding&) = delete;
  decode_padding& operator=(const decode_padding&) = delete;
};

// Fills `out` with the batch (tokens, pos, token_seq [n]; tables per sequence) padded to `bucket`
// (>= n) tokens.
void pad_decode_batch(std::span<const int32_t> tokens, std::span<const int32_t> pos,
                      std::span<const int32_t> token_seq, std::span<const std::span<const int32_t>> tables,
                      int64_t bucket, int32_t spare_block, decode_padding& out);

}  // namespace troupe::engine
