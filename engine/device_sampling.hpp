// How one row of logits is sampled on a device: shared by the backend interface, the host sampler
// (the penalty rule) and the CUDA kernels (plain C++17, for nvcc). The rules are the kernel's:
// engine/kernels/cuda/sampling.hpp.
#pragma once

#include <cstdint>

#include "engine/host_device.hpp"


namespace troupe::engine {

struct device_sampling {
  float temperature = 0.0f;        // 0 = greedy (the lowest id among equal maxima)
  int32_t top_k = 0;               // 0 = no cut
  float top_p = 1.0f;              // 1 = no cut
  float min_p = 0.0f;              // 0 = no cut; else keep tokens at least min_p times as likely as the best
  float repetition_penalty = 1.0f; // HF: over every penalty entry of the row
  float presence_penalty = 0.0f;   // OpenAI: over entries with generated > 0
  float frequency_penalty = 0.0f;  // OpenAI: times `generated`
  int32_t penalty_begin = 0;       // the row's entries: penalties[penalty_begin, + penalty_count)
  int32_t penalty_count = 0;
  uint64_t seed = 0;               // the draw depends on (seed, counter) alone
  uint64_t counter = 0;
};

// A token the penalties touch in one row, once: a prompt token (repetition penalty only) or a
// generated one, with how often it was generated.
struct penalty_entry {
  int32_t token = 0;
  int32_t generated = 0;
};

// A touched token's logit after the penalties: HF's repetition penalty (divide a positive logit,
// multiply a negative one), then OpenAI's presence and frequency penalties for generated tokens.
// The host sampler and the device kernel both apply exactly this.
TROUPE_HOST_DEVICE inline float penalized_logit(float raw, float repetition, float presence,
                                                         float frequency, int32_t generated) {
  float l = raw;
  if (repetition != 1.0f) l = l > 0.0f ? l / repetition : l * repetition;
  if (generated > 0) l -= presence + frequency * static_cast<float>(generated);
  return l;
}

}  // namespace troupe::engine
