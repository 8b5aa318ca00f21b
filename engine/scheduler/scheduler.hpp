// The iteration-level scheduler for continuous batching: each schedule() plans one forward step
// over the batch within a token budget, and update() takes the step's sampled tokens back.
//
// Per step: running sequences first (decodes, then unfinished prefills, each in policy order), then
// waiting requests in policy order (FCFS within a priority class), prefilled in chunks into the
// budget left; a long prompt takes several steps. Across classes: the best waiting class is planned
// after all decodes but before the prefill chunks of worse classes, a step that starts it carries
// nothing else of those (a short step: its time to first token), and when the batch is full it
// takes the place of the last running sequence of a worse class (preempted, as below). Waiting
// requests get their cached prefix from the KV cache manager and never preempt for blocks. When a
// running sequence cannot get blocks, the last running
// sequence in policy order (lowest priority, latest arrival) is preempted by recomputation: its
// blocks are freed and it goes back to waiting (ahead of later arrivals of its class) with its
// generated tokens to be recomputed; then the allocation is retried. No waiting request is admitted
// in a step that preempted. Admission rejects any request that could never run alone (prompt +
// max_tokens beyond the context or beyond the whole pool), so preemption always ends: the first
// running sequence in policy order always gets its blocks.
//
// Protocol: schedule(), run the plan (copies, then the forward pass, then sampling), update() with
// the sampled tokens; add_request/abort between steps. A sequence finishes on max_tokens, a stop
// token or the context length; its blocks are freed in update() at once, an aborted one's in abort().
//
// Threading: not thread-safe; the engine's step thread owns the scheduler and its KV cache manager.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "common/expected.hpp"
#include "engine/kv_cache/kv_cache_manager.hpp"
#include "engine/scheduler/request.hpp"
#include "engine/scheduler/scheduling_policy.hpp"
#include "engine/scheduler/step_plan.hpp"

namespace troupe::engine {

struct scheduler_config {
  int64_t max_batched_tokens = 2048;  // tokens computed per step, all sequences together (>= 1)
  int32_t max_running = 256;          // sequences in the running batch (>= 1)
  int64_t max_model_len = 4096;       // the model's context: prompt + max_tokens must fit
};

class scheduler {
 public:
  // `kv` must outlive the scheduler and is used by it alone while it lives.
  scheduler(scheduler_config config, kv_cache_manager& kv, std::unique_ptr<scheduling_policy> policy);

  // Queues a request. Errors name the limit: an empty prompt, max_tokens or n < 1, a duplicate id,
  // prompt + max_tokens beyond max_model_len or needing more blocks than the pool has, n beyond
  // max_running.
  [[nodiscard]] expected<void> add_request(request r);

  // Drops a request (waiting or running): its blocks are freed now, its id is listed in the next
  // plan's `aborted`. False for an unknown (or finished) id.
  bool abort(request_id id);

  // Plans the next step. An empty plan means nothing can run (nothing queued).
  [[nodiscard]] step_plan schedule();

  // Applies the last plan's results: every scheduled sequence advances by its chunk; those with
  // num_samples > 0 need a seq_output with exactly that many tokens (error otherwise, nothing
  // changed). Outputs for sequences aborted meanwhile are ignored.
  [[nodiscard]] expected<update_result> update(std::span<const seq_output> outputs);

  [[nodiscard]] size_t num_waiting() const { return waiting_.size(); }
  [[nodiscard]] size_t num_running() const { return running_.size(); }
  [[nodiscard]] bool has_unfinished() const { return !requests_.empty(); }
  [[nodiscard]] int64_t num_preemptions() const { return num_preemptions_; }
  [[nodiscard]] const scheduler_config& config() const { return config_; }
  [[nodiscard]] const kv_cache_manager& kv() const { return kv_; }
  // The ids of a sequence (prompt + generated) and how many of them are in the KV cache; for tests.
  [[nodiscard]] std::span<const int32_t> seq_tokens(seq_id seq) const;
  [[nodiscard]] int64_t seq_computed(seq_id seq) const;

 private:
  struct sequence {
    seq_id id = 0;
    request_id request = 0;
    int32_t priority = 0;
    int64_t arrival = 0;
    std::vector<int32_t> tokens;  // prompt + generated
    int64_t prompt_len = 0;
    int64_t computed = 0;         // tokens whose K/V is in the cache
    int32_t fan_out = 1;          // n until the first sample forks it
  };
  struct request_state {
    request req;
    int32_t live = 0;  // sequences not finished
  };
  struct planned {  // one entry of the last plan, for update()
    seq_id seq;
    int64_t num_tokens;
    int32_t num_samples;
  };

  [[nodiscard]] seq_rank rank(const sequence& s) const { return {s.priority, s.arrival, s.id}; }
  [[nodiscard]] bool before(seq_id a, seq_id b) const;
  void insert_waiting(seq_id id);
  void remove_running(seq_id id);
  [[nodiscard]] int32_t running_fan_out() const;
  void finish(sequence& s, finish_reason reason, update_result& out);

  scheduler_config config_;
  kv_cache_manager& kv_;
  std::unique_ptr<scheduling_policy> policy_;
  std::unordered_map<request_id, request_state> requests_;
  std::unordered_map<seq_id, sequence> seqs_;
  std::vector<seq_id> waiting_;  // in policy order
  std::vector<seq_id> running_;
  std::vector<planned> last_plan_;
  std::vector<request_id> pending_aborted_;
  seq_id next_seq_ = 1;
  int64_t next_arrival_ = 0;
  int64_t num_preemptions_ = 0;
};

}  // namespace troupe::engine
