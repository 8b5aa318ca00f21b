// A request's sampling parameters and their range checks: apart from the sampler, so that what
// parses requests (the router, its fuzzer) needs none of the sampler's kernels.
#pragma once

#include <cstdint>
#include <optional>

#include "common/expected.hpp"

namespace troupe::engine {

struct sampling_params {
  float temperature = 1.0f;        // 0 = greedy
  float top_p = 1.0f;              // (0, 1]
  int32_t top_k = 0;               // 0 = off
  float min_p = 0.0f;              // [0, 1]
  float repetition_penalty = 1.0f; // > 0; 1 = off (HF style: divide positive logits, multiply negative)
  float presence_penalty = 0.0f;   // [-2, 2], OpenAI style, over generated tokens
  float frequency_penalty = 0.0f;  // [-2, 2], OpenAI style, over generated tokens
  std::optional<uint64_t> seed;    // none: seeded from std::random_device
  int32_t logprobs = -1;           // -1: none; 0: chosen token only; N: plus top N alternatives
};

// Checks ranges; the error names the parameter and the allowed range.
[[nodiscard]] expected<void> validate(const sampling_params& p);

}  // namespace troupe::engine
