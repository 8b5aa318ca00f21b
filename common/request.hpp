// The one request every role shares: the front end prepares it (tokenized and validated), the
// router routes it, it travels to a shard group as is, and the engine runs it. Fields that only
// the front end uses (stop strings, skip_special_tokens) travel too, so that every role reads the
// same shape and the response cache's key is made from one place.
#pragma once

#include <caf/meta/type_name.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common/sampling_params.hpp"

namespace troupe {

// When a sample stops before max_tokens.
struct stop_rules {
  std::vector<int32_t> token_ids;    // a generated id in this list ends the sample (kept in the output)
  bool ignore_eos = false;           // else the model's eos ids end it too
  std::vector<std::string> strings;  // the text ends before the first match (applied on the text: the
                                     // front end, or the engine's single-sequence generate())
  friend bool operator==(const stop_rules&, const stop_rules&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, stop_rules& x) {
  return f(caf::meta::type_name("stop_rules"), x.token_ids, x.ignore_eos, x.strings);
}

struct request {
  int64_t id = 0;                    // unique in the cluster: a random positive 63-bit number per request
                                     // (the engine keys its own requests apart)
  std::vector<int32_t> prompt;       // token ids, within the model's vocabulary
  int32_t max_tokens = 16;           // >= 1 generated tokens per sample
  sampling_params sampling;
  stop_rules stop;
  bool skip_special_tokens = true;   // leave special tokens out of the text
  int32_t n = 1;                     // parallel samples sharing the prompt's KV blocks
  int32_t priority = 0;              // lower runs first; the last-arrived of the lowest class is preempted first.
                                     // Set by the router: -1 when the fair queue favours the tenant, else 0
  // A request resumed on another group after its first failed mid-stream: the last `resumed` prompt
  // tokens are what it had generated. They count as generated for the penalties, and draws go on
  // at their positions (the draw depends on seed and position), so the rest continues that stream.
  // Needs n = 1.
  int32_t resumed = 0;
  // Whom the request is for: the label of the API key it came with (empty: the node has no keys).
  // The router's fair queue shares the groups among tenants by the weights of their keys (VTC).
  std::string tenant;
  // Milliseconds from submission within which the request must end (0: no deadline). The router
  // enforces it: past it, the request is aborted at its group (or taken out of the fair queue) and
  // ends with a timeout failure, after whatever its client already has.
  int64_t deadline_ms = 0;
  friend bool operator==(const request&, const request&) = default;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request& x) {
  return f(caf::meta::type_name("request"), x.id, x.prompt, x.max_tokens, x.sampling, x.stop,
           x.skip_special_tokens, x.n, x.priority, x.resumed, x.tenant, x.deadline_ms);
}

}  // namespace troupe
