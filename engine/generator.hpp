// Generation for one sequence: prefill the prompt, then sample and decode token by token until a
// stop token, a stop string, max_tokens or the context ends; streams text deltas as it goes.
// (The continuous-batching engine that serves many sequences per step builds on the same parts.)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "common/finish_reason.hpp"
#include "common/request.hpp"
#include "engine/llama_forward.hpp"
#include "engine/llm_engine.hpp"
#include "engine/sampler.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

// One step's output, streamed as it is produced.
struct generation_event {
  int32_t token;
  std::string text_delta;  // may be empty (a partial UTF-8 character, or text held back that might
                           // begin a stop string)
  const sample_result* sample;
};

struct generation_result {
  std::vector<int32_t> prompt_tokens;
  std::vector<int32_t> tokens;          // generated ids, including a final stop token
  std::string text;                     // their text, cut before a matched stop string
  std::vector<sample_result> logprobs;  // one per generated token when sampling.logprobs >= 0
  finish_reason finish = finish_reason::length;  // stop or length
};

// Checks the request against the model (prompt ids in the vocabulary, prompt fits the context,
// sampling parameters, max_tokens); errors name the parameter and the limit.
// The request (common/request.hpp) runs one sample: n and priority are not used here; its prompt
// is already encoded (with bos if the model wants it); max_tokens is also capped by the context.
[[nodiscard]] expected<void> validate(const request& r, const model_config& c);

// Runs the request to the end. `on_event` (may be empty) sees every token as it is sampled.
[[nodiscard]] expected<generation_result> generate(llama_forward& fwd, const tokenizer& tok,
                                                   const request& req,
                                                   const std::function<void(const generation_event&)>& on_event);

// The same generation as one request of a continuous-batching engine, stepped to its end: the
// same result, events and stop rules (max_tokens capped at the context, as above). This is how
// `troupe generate --tp` runs, on the shard group executor that serving uses. `engine` must be
// idle and have been created with the model's eos ids; `c` is its model's config.
[[nodiscard]] expected<generation_result> generate(llm_engine& engine, const model_config& c, const tokenizer& tok,
                                                   const request& req,
                                                   const std::function<void(const generation_event&)>& on_event);

}  // namespace troupe::engine
