// Generation for one sequence: prefill the prompt, then sample and decode token by token until a
// stop token, a stop string, max_tokens or the context ends; streams text deltas as it goes.
// (The continuous-batching engine that serves many sequences per step builds on the same parts.)
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "common/expected.hpp"
#include "engine/llama_forward.hpp"
#include "engine/sampler.hpp"
#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

struct generation_request {
  std::vector<int32_t> prompt;          // token ids, already encoded (with bos if the model wants it)
  int32_t max_tokens = 16;              // >= 1; also capped by the model's context
  sampling_params sampling;
  std::vector<int32_t> stop_token_ids;  // ends generation (the model's eos ids are added unless ignore_eos)
  std::vector<std::string> stop;        // stop strings: the text ends before the first match
  bool ignore_eos = false;
  bool skip_special = true;             // leave special tokens out of the text
};

enum class finish_reason { stop, length };

[[nodiscard]] constexpr const char* to_string(finish_reason r) {
  return r == finish_reason::stop ? "stop" : "length";
}

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
  finish_reason finish = finish_reason::length;
};

// Checks the request against the model (prompt ids in the vocabulary, prompt fits the context,
// sampling parameters, max_tokens); errors name the parameter and the limit.
[[nodiscard]] expected<void> validate(const generation_request& r, const model_config& c);

// Runs the request to the end. `on_event` (may be empty) sees every token as it is sampled.
[[nodiscard]] expected<generation_result> generate(llama_forward& fwd, const tokenizer& tok,
                                                   const generation_request& req,
                                                   const std::function<void(const generation_event&)>& on_event);

}  // namespace troupe::engine
