// A request's sampling parameters and their range checks: part of the one request every role shares
// (common/request.hpp), so that what parses requests (the front end, its fuzzer) needs none of the
// sampler's kernels, and the wire carries them with one inspect().
#pragma once

#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <optional>

#include "common/expected.hpp"

namespace troupe {

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
  friend bool operator==(const sampling_params&, const sampling_params&) = default;
};

// The wire form: CAF 0.17 has no std::optional, so the seed travels as (has_seed, seed).
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampling_params& x) {
  bool has_seed = x.seed.has_value();
  uint64_t seed = x.seed.value_or(0);
  if constexpr (Inspector::reads_state) {
    return f(caf::meta::type_name("sampling_params"), x.temperature, x.top_p, x.top_k, x.min_p,
             x.repetition_penalty, x.presence_penalty, x.frequency_penalty, has_seed, seed, x.logprobs);
  } else {
    auto r = f(caf::meta::type_name("sampling_params"), x.temperature, x.top_p, x.top_k, x.min_p,
               x.repetition_penalty, x.presence_penalty, x.frequency_penalty, has_seed, seed, x.logprobs);
    if (has_seed) x.seed = seed; else x.seed.reset();
    return r;
  }
}

// Checks ranges; the error names the parameter and the allowed range.
[[nodiscard]] expected<void> validate(const sampling_params& p);

// Greedy (temperature 0) or seeded: the same request gives the same tokens (the response cache's rule).
[[nodiscard]] inline bool deterministic(const sampling_params& p) {
  return p.temperature == 0.0f || p.seed.has_value();
}

}  // namespace troupe
