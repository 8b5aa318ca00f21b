// The step-based engine a shard group's leader runs: many requests at once, continuously batched
// over a paged KV cache with automatic prefix caching. add_request() queues, step() runs one forward
// pass over the whole batch (the scheduler's plan) and returns every request's new tokens, abort()
// ends a request and frees its KV blocks at once. Parts wired explicitly: block_pool ->
// kv_cache_manager -> scheduler (FCFS with priority classes) -> a step_executor (this process's
// forward pass, or a shard group's) -> one sampler per sequence.
//
// Threading: not thread-safe; one thread (the step loop) owns the engine, the forward pass and
// its backend.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/expected.hpp"
#include "common/finish_reason.hpp"
#include "common/request.hpp"
#include "engine/kv_cache/block_pool.hpp"
#include "engine/kv_cache/kv_cache_manager.hpp"
#include "engine/llama_forward.hpp"
#include "engine/executor/executor.hpp"
#include "engine/sampler.hpp"
#include "engine/scheduler/scheduler.hpp"

namespace troupe::engine {

struct engine_config {
  int64_t kv_memory_bytes = int64_t(256) << 20;  // the paged cache's size: K and V of all layers
  double kv_memory_fraction = 0;                 // > 0: instead, this share of the backend's available memory
  int32_t block_size = 16;                       // positions per KV block
  int64_t max_batched_tokens = 256;              // tokens per step (the forward pass's max_tokens)
  int32_t max_running = 64;                      // sequences in the running batch
  bool prefix_caching = true;
  std::string model_revision;                    // seeds the prefix-cache hashes (e.g. the model path)
  bool enforce_eager = false;                    // never run decode steps as CUDA graphs (llama_forward::set_graph_max_batch)
};

// One sample of one request after a step: the tokens generated this step (one, or none when the
// step only prefilled or the request ended), their logprobs when asked for, and how it finished.
struct request_output {
  int64_t request = 0;
  int32_t sample = 0;                   // 0 .. n-1
  std::vector<int32_t> tokens;
  std::vector<sample_result> logprobs;  // one per token when sampling.logprobs >= 0
  std::optional<finish_reason> finish;  // none while the sample runs
  std::string error;                    // with finish_reason::error
};

struct engine_stats {
  size_t running = 0, waiting = 0;
  int64_t preemptions = 0;
  int32_t kv_blocks_used = 0, kv_blocks_total = 0;
  int64_t kv_capacity_tokens = 0;
  double prefix_hit_rate = 0;           // prompt tokens found in the cache / prompt tokens looked up
  int64_t generated_tokens = 0;
  double tokens_per_s = 0;              // generated tokens / time spent in step()
};

class llm_engine {
 public:
  // Sizes the paged cache from config.kv_memory_bytes (at least one sequence of the model's
  // context must fit, else an error naming the sizes). `fwd` must have been created with
  // max_tokens >= config.max_batched_tokens and must outlive the engine. `eos_ids` end every
  // request that does not ignore_eos.
  //
  // Steps run through `executor` (executor/executor.hpp), which the engine owns; none: on `fwd`
  // alone. A shard group's executor (make_group_executor over rank 0's `fwd`) sends the ranks the
  // setup here, each step before running it and stop when the engine is destroyed. The KV budget
  // is per rank: each rank's blocks hold only its kv heads, so the same number fits on every rank.
  [[nodiscard]] static expected<std::unique_ptr<llm_engine>> create(llama_forward& fwd, engine_config config,
                                                                    std::vector<int32_t> eos_ids,
                                                                    std::unique_ptr<step_executor> executor = nullptr);
  ~llm_engine();
  llm_engine(const llm_engine&) = delete;
  llm_engine& operator=(const llm_engine&) = delete;

  // Queues a request (its id is the caller's and not used here); returns the engine's own id.
  // Errors: invalid sampling parameters, token ids outside the vocabulary, and (from the scheduler)
  // a prompt + max_tokens beyond the context or the whole cache. The request's stop strings and
  // skip_special_tokens are the caller's to apply on the text: the engine works on token ids.
  [[nodiscard]] expected<int64_t> add_request(request r);

  // One forward pass over the batch; outputs for every sample that got a token or finished.
  // Empty when there is nothing to run.
  [[nodiscard]] std::vector<request_output> step();

  // Ends a request now (its blocks are freed at once); the next step() reports finish `abort`.
  // False for an unknown or finished id.
  bool abort(int64_t id);

  [[nodiscard]] bool has_unfinished() const;
  [[nodiscard]] engine_stats stats() const;

  // Shard groups: the leader calls this at least every second while idle, so that its ranks'
  // waits stay within the timeout and a dead rank is noticed. A no-op without a group.
  [[nodiscard]] expected<void> keep_group_alive() { return executor_->keep_alive(); }

  // Why the shard group failed (a rank died or hung, or a step failed on some rank), once it has;
  // from then on every step fails its requests with this error, and the group must be torn down.
  // Without a group: always empty.
  [[nodiscard]] const std::optional<std::string>& group_failure() const { return executor_->failure(); }

 private:
  struct request_state {
    request req;
    std::vector<sampler> samplers;  // one per sample, created when the prompt's logits arrive
    uint64_t device_seed = 0;       // sampling on the device: the request's seed, or one drawn at random
  };
  struct seq_state {
    int64_t request = 0;
    int32_t sample = 0;
  };

  llm_engine(llama_forward& fwd, engine_config config, std::vector<int32_t> eos_ids,
             std::unique_ptr<step_executor> executor, std::unique_ptr<paged_kv> kv, int32_t num_blocks);
  // Drops the engine's state of a request the scheduler no longer runs.
  // One sampler per sample of the request, made before its first draw (seed + sample index when seeded).
  static void ensure_samplers(request_state& rs);
  void forget(int64_t id);
  void fail_step(const step_plan& plan, const std::string& why, std::vector<request_output>& out);
  // The device sampling rows of the plan's sampling sequences, in plan order, with their penalty
  // entries; false when one of them needs the host sampler (n > 1 on its first draw, or logprobs).
  [[nodiscard]] bool device_sampling_for(const step_plan& plan, std::vector<device_sampling>& rows,
                                         std::vector<penalty_entry>& penalties);

  llama_forward& fwd_;
  engine_config config_;
  std::vector<int32_t> eos_ids_;
  std::unique_ptr<step_executor> executor_;  // destroyed last of the engine's parts: a group's ranks are sent stop
  std::unique_ptr<paged_kv> kv_;
  block_pool pool_;
  kv_cache_manager cache_;
  scheduler scheduler_;
  int64_t next_request_ = 1;
  std::unordered_map<int64_t, request_state> requests_;
  std::unordered_map<seq_id, seq_state> seqs_;
  std::vector<int64_t> aborted_;  // reported by the next step()
  std::vector<float> logits_;
  int64_t generated_ = 0;
  std::chrono::steady_clock::duration step_time_{};
};

}  // namespace troupe::engine
