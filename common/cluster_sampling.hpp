// The sampling parameters of a generate_request on the wire, to and from the engine's
// sampling_params: one place for both directions, so that a new parameter is added once.
#pragma once

#include "common/cluster_messages.hpp"
#include "engine/sampler.hpp"

namespace troupe::cluster {

inline void set_sampling(generate_request& r, const engine::sampling_params& s) {
  r.temperature = s.temperature;
  r.top_p = s.top_p;
  r.top_k = s.top_k;
  r.min_p = s.min_p;
  r.repetition_penalty = s.repetition_penalty;
  r.presence_penalty = s.presence_penalty;
  r.frequency_penalty = s.frequency_penalty;
  r.has_seed = s.seed.has_value();
  r.seed = s.seed.value_or(0);
  r.logprobs = s.logprobs;
}

[[nodiscard]] inline engine::sampling_params sampling_of(const generate_request& r) {
  engine::sampling_params s;
  s.temperature = r.temperature;
  s.top_p = r.top_p;
  s.top_k = r.top_k;
  s.min_p = r.min_p;
  s.repetition_penalty = r.repetition_penalty;
  s.presence_penalty = r.presence_penalty;
  s.frequency_penalty = r.frequency_penalty;
  if (r.has_seed) s.seed = r.seed;
  s.logprobs = r.logprobs;
  return s;
}

}  // namespace troupe::cluster
