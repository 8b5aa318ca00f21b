// The scheduler's boundary with the step loop: the plan of one forward step (what to compute for
// which sequence over which blocks, copies to do first, who was preempted or aborted), the sampled
// tokens handed back after the step, and what those tokens finished.
#pragma once

#include <cstdint>
#include <vector>

#include "common/finish_reason.hpp"
#include "engine/kv_cache/kv_blocks.hpp"
#include "engine/scheduler/request.hpp"

namespace troupe::engine {

// One sequence's share of a step: compute K/V (and logits where num_samples > 0) for `tokens` at
// positions start_pos, start_pos+1, ...; attention reads positions 0..start_pos+i through
// block_table (position p: block block_table[p / block_size], offset p % block_size).
struct scheduled_seq {
  seq_id seq = 0;
  request_id request = 0;
  int64_t start_pos = 0;               // tokens already in the KV cache (prefix hits included)
  std::vector<int32_t> tokens;         // this step's ids: 1 for a decode, a chunk for a prefill
  std::vector<int32_t> block_table;    // covers positions 0 .. start_pos + tokens.size() - 1
  int32_t num_samples = 0;             // 0: a prefill chunk short of the end (no logits needed);
                                       // 1; or n for the first sample of a request with n > 1
                                       // (n tokens from the last token's logits; update() forks)
};

struct step_plan {
  std::vector<scheduled_seq> seqs;     // running decodes first, then prefills (old and new)
  std::vector<block_copy> copies;      // copy-on-write: do these before the forward pass
  std::vector<seq_id> preempted;       // freed this step; they recompute later (the engine keeps
                                       // their streamed text: recomputation repeats no output)
  std::vector<request_id> aborted;     // aborted since the last plan (blocks already freed)
  int64_t num_tokens = 0;              // sum of tokens.size(): <= max_batched_tokens
  [[nodiscard]] bool empty() const { return seqs.empty(); }
};

// The sampled ids of one sequence after the step: num_samples of them (ignored for others).
struct seq_output {
  seq_id seq = 0;
  std::vector<int32_t> tokens;
};

struct finished_seq {
  seq_id seq = 0;
  request_id request = 0;
  finish_reason reason = finish_reason::length;  // stop or length
  std::vector<int32_t> generated;  // every token generated, a final stop token included
  bool request_done = false;       // the request's last live sequence
};

// A sequence created by update() for a request with n > 1 (sample index 1 .. n-1).
struct forked_seq {
  request_id request = 0;
  seq_id parent = 0;
  seq_id child = 0;
};

struct update_result {
  std::vector<forked_seq> forks;
  std::vector<finished_seq> finished;
};

}  // namespace troupe::engine
