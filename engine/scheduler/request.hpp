// What the scheduler is asked to run: the shared request (common/request.hpp) as the engine hands it
// over, already tokenized and validated against the vocabulary, under the engine's own id, with the
// model's eos ids already in stop.token_ids (unless ignore_eos). The scheduler reads the prompt,
// max_tokens, priority, n (the prompt is prefilled once, then forked) and stop.token_ids.
#pragma once

#include <cstdint>

#include "common/request.hpp"
#include "engine/kv_cache/kv_blocks.hpp"

namespace troupe::engine {

using request_id = int64_t;

}  // namespace troupe::engine
