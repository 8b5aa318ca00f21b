// Turns one step's logits into the next token: penalties, temperature, top-k, top-p, min-p, then a
// draw from the request's own seeded generator (same seed, same output). Greedy when temperature is 0.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "engine/device_sampling.hpp"
#include "common/sampling_params.hpp"

namespace troupe::engine {

struct token_logprob {
  int32_t token;
  float logprob;
};

struct sample_result {
  int32_t token;
  float logprob;                      // log-softmax of the raw logits (before penalties/temperature)
  std::vector<token_logprob> top;     // top-N alternatives by raw logprob, best first
};

// One sampler per sequence: it owns the seeded generator and the counts the penalties need.
class sampler {
 public:
  explicit sampler(sampling_params params);

  // Samples from `logits` (vocab entries; modified in place). `prompt` feeds the repetition
  // penalty (which, as in HF, covers prompt and generated tokens); generated tokens are tracked
  // internally through accept().
  // `position`: the position of the token drawn (prompt length + tokens generated before it); the
  // draw depends on (seed, position) alone (counter_uniform).
  [[nodiscard]] sample_result sample(std::span<float> logits, std::span<const int32_t> prompt, uint64_t position);

  // Records a generated token (for presence/frequency/repetition penalties).
  void accept(int32_t token);

  // Appends the tokens the penalties would touch in the next sample() (ids in [0, vocab)), once
  // each, ascending, with their generated counts: prompt and generated tokens under a repetition
  // penalty, generated ones under presence/frequency penalties, none without penalties. What a
  // device applies with penalized_logit to sample as sample() would.
  void penalty_entries(std::span<const int32_t> prompt, int32_t vocab, std::vector<penalty_entry>& out) const;

  // This sampler's rule for a device (device_sampling.hpp): its parameters, with its penalty
  // entries appended to `penalties` (the rule's penalty_begin/count index them). The draw's seed
  // and counter are left to the caller.
  [[nodiscard]] device_sampling device_rule(std::span<const int32_t> prompt, int32_t vocab,
                                            std::vector<penalty_entry>& penalties) const;

  [[nodiscard]] const sampling_params& params() const { return params_; }

 private:
  sampling_params params_;
  uint64_t seed_;
  std::vector<std::pair<int32_t, int32_t>> counts_;  // generated token -> count, sorted by token
  std::vector<penalty_entry> entries_;
  std::vector<float> scratch_;
  std::vector<int32_t> index_;
  // Tokens the penalties changed this step, with their raw logits: the reported logprob is of the
  // raw logits, and the penalties edit `logits` in place.
  std::vector<std::pair<int32_t, float>> touched_;
};

}  // namespace troupe::engine
