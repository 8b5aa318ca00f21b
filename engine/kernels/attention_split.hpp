// How a decode step's attention is cut along the KV length (flash-decoding): plain arithmetic shared
// by the CUDA kernels and the host, so that the CPU tests check it. A (token, head) pair attends
// positions 0..len-1; with `splits` > 1 they are cut into ranges of equal length, never shorter than
// attention_min_split, so a short context uses only its first ranges and the others are empty.
#pragma once

#include <cstdint>

#include "engine/host_device.hpp"


namespace troupe::engine {

// Positions one split covers at the least: below this, another block costs more than it saves.
constexpr int32_t attention_min_split = 128;
// The most splits of one (token, head): bounds the scratch memory and the merge's work.
constexpr int32_t attention_max_splits = 32;

// Positions [begin, end) of split `s` of `splits` for a context of `len` positions; empty
// (begin >= end) when the context is too short to reach it. Every position is in exactly one split.
struct split_range {
  int32_t begin = 0;
  int32_t end = 0;
};
TROUPE_HOST_DEVICE inline split_range split_of(int32_t len, int32_t splits, int32_t s) {
  int32_t per = (len + splits - 1) / splits;
  if (per < attention_min_split) per = attention_min_split;
  const int64_t begin = int64_t(s) * per, end = begin + per;
  split_range r;
  r.begin = begin < len ? int32_t(begin) : len;
  r.end = end < len ? int32_t(end) : len;
  return r;
}

// How many splits a decode step of `n` tokens over `n_heads` heads uses, on a device of `sm_count`
// multiprocessors, when its longest context has `max_len` positions: enough blocks for about two
// per multiprocessor, none that could only be empty. max_len is rounded up to a power of two first,
// so the count changes rarely as contexts grow (a captured CUDA graph stays valid longer).
[[nodiscard]] inline int32_t decode_splits(int64_t n, int64_t n_heads, int64_t max_len, int64_t sm_count) {
  int64_t len = 1;
  while (len < max_len) len *= 2;
  const int64_t blocks = n * n_heads;
  if (blocks <= 0 || len < 2 * int64_t(attention_min_split)) return 1;
  int64_t want = (2 * sm_count + blocks - 1) / blocks;
  const int64_t most = len / attention_min_split;
  if (want > most) want = most;
  if (want > attention_max_splits) want = attention_max_splits;
  return want < 1 ? 1 : int32_t(want);
}

}  // namespace troupe::engine
