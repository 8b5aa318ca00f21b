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

// The uniform number in [0, 1) that the draw at `counter` (the position of the token drawn) uses for
// `seed`: splitmix64 of their mix. The host sampler and the device kernel both draw with it, so a
// draw depends on (seed, position) alone: a recomputed step, or a request resumed on another group
// after its first one failed, draws what the undisturbed run would have drawn there.
TROUPE_HOST_DEVICE inline double counter_uniform(uint64_t seed, uint64_t counter) {
  uint64_t z = seed + 0x9e3779b97f4a7c15ull * (counter + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  z ^= z >> 31;
  return double(z >> 11) * (1.0 / 9007199254740992.0);
}

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
