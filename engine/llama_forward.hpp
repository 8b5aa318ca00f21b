// The Llama-family decoder forward pass (Llama 2/3, Mistral, Qwen2), written once against the
// backend interface: embedding, N x (RMSNorm, GQA attention with rotary, SwiGLU MLP), final norm,
// output projection. Model code only: the KV store is handed in, batching lives elsewhere.
#pragma once

#include <memory>
#include <span>
#include <vector>

#include "common/expected.hpp"
#include "engine/backend.hpp"
#include "engine/decode_padding.hpp"
#include "engine/model/model.hpp"

namespace troupe::engine {

namespace parallel {
class communicator;
}

class llama_forward {
 public:
  // Uploads the weights to `be` and sizes activation buffers for up to `max_tokens` tokens per call.
  // Tensor parallelism: with `comm`, `m` is this rank's shard (parallel::shard_model) and the
  // [n, dim] outputs of the o and down projections are partial sums that comm.all_reduce_sum
  // completes before they join the residual stream, so every rank holds the full residual stream
  // and computes the full logits. `comm` must outlive the forward pass; a failed collective makes
  // the call return its error (the communicator is broken from then on). Without `comm` (the
  // default) nothing changes. See tp_forward.hpp for building a rank's forward pass.
  [[nodiscard]] static expected<std::unique_ptr<llama_forward>> create(std::shared_ptr<const model> m,
                                                                       backend& be, int64_t max_tokens,
                                                                       parallel::communicator* comm = nullptr);

  // Runs `tokens` of one sequence at positions start_pos.. (their K/V are written into `kv`) and
  // writes the last token's logits [vocab] to `logits`. Longer inputs run in chunks of max_tokens.
  // Errors: token id out of the vocabulary, positions beyond kv capacity.
  [[nodiscard]] expected<void> forward(std::span<const int32_t> tokens, int64_t start_pos, kv_store& kv,
                                       std::span<float> logits);

  // A KV store for one sequence of up to `capacity` tokens.
  [[nodiscard]] expected<std::unique_ptr<kv_store>> new_kv(int64_t capacity);

  // One continuous-batching step: the tokens of several sequences (decode tokens and prefill
  // chunks, in any order) go through every weight matrix together, and each token attends its own
  // sequence's positions 0..pos through that sequence's block table in the paged cache `kv`.
  // Writes the logits of the tokens listed in `logit_rows` to `logits` [logit_rows.size(), vocab].
  // At most max_tokens tokens per call (the scheduler's token budget). Errors: token ids outside
  // the vocabulary, positions beyond the context, a block table too short for a position, or a
  // block id outside the cache -- checked before anything runs.
  struct batch {
    std::span<const int32_t> tokens;                   // [n]
    std::span<const int32_t> pos;                      // [n]
    std::span<const int32_t> token_seq;                // [n]: index into `tables`
    std::span<const std::span<const int32_t>> tables;  // per sequence: its block ids
    std::span<const int32_t> logit_rows;               // token indices whose logits are wanted
  };
  [[nodiscard]] expected<void> forward_batch(const batch& b, paged_kv& kv, std::span<float> logits);

  // forward_batch with the logit rows sampled where they are (backend::sample; only when
  // samples_on_device()): rows[i] says how to sample logit row i, and its token id goes to ids[i].
  // Only the ids leave the device.
  [[nodiscard]] expected<void> forward_batch_sampled(const batch& b, paged_kv& kv, std::span<const device_sampling> rows,
                                                     std::span<const penalty_entry> penalties, std::span<int32_t> ids);
  [[nodiscard]] bool samples_on_device() const { return be_.samples_on_device(); }

  // Decode steps (one token per sequence) of up to `n` sequences run as CUDA graphs, captured once
  // per batch-size bucket (decode_padding.hpp), when the backend captures graphs; 0 = never (as
  // vLLM's --enforce-eager). The default: min(max_tokens, 256).
  void set_graph_max_batch(int64_t n) { graph_max_batch_ = n; }
  [[nodiscard]] int64_t graph_max_batch() const { return graph_max_batch_; }

  // A paged KV cache of `num_blocks` blocks of `block_size` positions for this model.
  [[nodiscard]] expected<std::unique_ptr<paged_kv>> new_paged_kv(int64_t num_blocks, int64_t block_size);

  // Decode graphs the backend captured and launched so far.
  [[nodiscard]] backend::graph_counts graphs() const { return be_.graphs(); }

  // What the backend could still allocate (bytes).
  [[nodiscard]] int64_t available_memory() const { return be_.available_memory(); }

  // Copies a block in every layer (the scheduler's copy-on-write), before the step that needs it.
  void copy_kv_block(paged_kv& kv, int32_t src, int32_t dst) { be_.copy_kv_block(kv, src, dst); }

  [[nodiscard]] const model_config& config() const { return model_->config; }
  [[nodiscard]] const model& source() const { return *model_; }

 private:
  struct layer {
    std::unique_ptr<device_weight> attn_norm, wq, wk, wv, bq, bk, bv, wo, ffn_norm, w_gate, w_up, w_down;
  };

  // Where a chunk's K/V rows go and what its attention reads: one contiguous sequence, or a
  // batch over the paged cache.
  struct kv_binding {
    virtual ~kv_binding() = default;
    virtual void write(int64_t layer, act k, act v) = 0;
    virtual void attend(int64_t layer, act q, act out) = 0;
  };

  llama_forward(std::shared_ptr<const model> m, backend& be, int64_t max_tokens);
  // forward_batch's checks and layers; the logits of b.logit_rows stay in backend memory ([m,
  // vocab]; no rows when none are wanted).
  [[nodiscard]] expected<act> run_batch(const batch& b, paged_kv& kv);
  // The bucket a decode batch is padded to for a CUDA graph; 0 when it runs eagerly.
  [[nodiscard]] int64_t graph_bucket_for(const batch& b, const paged_kv& kv) const;
  // run_batch's graph path: the padded batch (padding_) through the layers and, when `logits`, the
  // output norm and projection of every row, as one graph; the first n rows are the batch's.
  [[nodiscard]] expected<act> run_graph_batch(int64_t n, int64_t bucket, bool logits, kv_binding& kv);
  [[nodiscard]] expected<void> run_chunk(std::span<const int32_t> tokens, std::span<const int32_t> pos,
                                         kv_binding& kv);
  // Tensor parallelism: completes a row-parallel partial sum [n, dim]; a no-op without comm_.
  [[nodiscard]] expected<void> reduce(act partial);
  // Waits (bounded) for the collectives a call enqueued on a device stream; a no-op on the CPU.
  [[nodiscard]] expected<void> settle_collectives();

  std::shared_ptr<const model> model_;
  backend& be_;
  int64_t max_tokens_;
  parallel::communicator* comm_ = nullptr;  // tensor parallelism; null for a whole model
  std::vector<float> inv_freq_;
  std::vector<int32_t> pos_;  // positions of the current chunk (kept to avoid an allocation per step)
  std::unique_ptr<device_weight> tok_embd_, output_norm_, output_;
  std::vector<layer> layers_;
  std::unique_ptr<act_buffer> x_, h_, q_, k_, v_, attn_, gate_, up_, logits_;
  int64_t logits_rows_ = 1;  // rows logits_ holds (grown by forward_batch as needed)
  int64_t graph_max_batch_ = 0;
  decode_padding padding_;  // the padded batch of the current graph step
};

}  // namespace troupe::engine
