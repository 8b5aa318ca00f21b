// What the scheduler is asked to run: a request's prompt ids and limits, as the engine hands them
// over (already tokenized and validated against the vocabulary by the caller).
#pragma once

#include <cstdint>
#include <vector>

#include "engine/kv_cache/kv_blocks.hpp"

namespace troupe::engine {

using request_id = int64_t;

struct sched_request {
  request_id id = 0;                    // unique among live requests
  std::vector<int32_t> prompt;          // >= 1 token
  int32_t max_tokens = 16;              // >= 1 generated tokens per sequence
  int32_t priority = 0;                 // priority class: lower is more important
  int32_t n = 1;                        // parallel samples: the prompt is prefilled once, then forked
  std::vector<int32_t> stop_token_ids;  // a generated id in this list ends its sequence
};

}  // namespace troupe::engine
