// llama_forward: one decoder stack over the backend ops; shapes in comments, n = tokens in the chunk.
#include "engine/llama_forward.hpp"

#include <algorithm>
#include <numeric>
#include <optional>

#include "engine/parallel/communicator.hpp"

namespace troupe::engine {

llama_forward::llama_forward(std::shared_ptr<const model> m, backend& be, int64_t max_tokens)
    : model_(std::move(m)), be_(be), max_tokens_(max_tokens) {}

expected<std::unique_ptr<llama_forward>> llama_forward::create(std::shared_ptr<const model> m, backend& be,
                                                               int64_t max_tokens, parallel::communicator* comm) {
  if (max_tokens <= 0) return fail("llama_forward: max_tokens must be positive");
  std::unique_ptr<llama_forward> f(new llama_forward(std::move(m), be, max_tokens));
  f->comm_ = comm;
  const model_config& c = f->model_->config;
  const model_weights& w = f->model_->weights;
  std::optional<error> failed;
  auto up = [&be, &failed](const tensor_view& t) -> std::unique_ptr<device_weight> {
    if (failed) return nullptr;
    auto r = be.upload(t);
    if (!r) {
      failed = r.err();
      return nullptr;
    }
    return std::move(*r);
  };
  f->tok_embd_ = up(w.tok_embd);
  f->output_norm_ = up(w.output_norm);
  f->output_ = up(w.output);
  for (const layer_weights& lw : w.layers) {
    layer l;
    l.attn_norm = up(lw.attn_norm);
    l.wq = up(lw.wq);
    l.wk = up(lw.wk);
    l.wv = up(lw.wv);
    if (lw.bq) l.bq = up(*lw.bq);
    if (lw.bk) l.bk = up(*lw.bk);
    if (lw.bv) l.bv = up(*lw.bv);
    l.wo = up(lw.wo);
    l.ffn_norm = up(lw.ffn_norm);
    l.w_gate = up(lw.w_gate);
    l.w_up = up(lw.w_up);
    l.w_down = up(lw.w_down);
    f->layers_.push_back(std::move(l));
  }
  if (failed) return *failed;
  f->inv_freq_ = rope_inv_freq(c, w.rope_freq_factors.empty() ? nullptr : &w.rope_freq_factors);
  const int64_t n = max_tokens;
  f->x_ = be.alloc(n, c.dim);
  f->h_ = be.alloc(n, c.dim);
  f->q_ = be.alloc(n, c.q_dim());
  f->k_ = be.alloc(n, c.kv_dim());
  f->v_ = be.alloc(n, c.kv_dim());
  f->attn_ = be.alloc(n, c.q_dim());
  f->gate_ = be.alloc(n, c.ffn_dim);
  f->up_ = be.alloc(n, c.ffn_dim);
  f->logits_ = be.alloc(1, c.vocab_size);
  f->graph_max_batch_ = be.captures_graphs() ? std::min<int64_t>(max_tokens, 256) : 0;
  if (auto ok = be.check(); !ok) return fail("llama_forward: activation buffers: " + ok.message());  // a device out of memory
  return f;
}

expected<std::unique_ptr<kv_store>> llama_forward::new_kv(int64_t capacity) {
  const model_config& c = model_->config;
  if (capacity <= 0 || capacity > c.max_position)
    return fail("KV capacity " + std::to_string(capacity) + " is outside [1, " + std::to_string(c.max_position) +
                "] (the model's context length)");
  return be_.alloc_kv(c.n_layers, capacity, c.kv_dim());
}

expected<void> llama_forward::forward(std::span<const int32_t> tokens, int64_t start_pos, kv_store& kv,
                                      std::span<float> logits) {
  const model_config& c = model_->config;
  if (tokens.empty()) return fail("forward: no tokens");
  if (int64_t(logits.size()) != c.vocab_size) return fail("forward: logits span has the wrong size");
  for (int32_t t : tokens)
    if (t < 0 || t >= c.vocab_size)
      return fail("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
  if (start_pos < 0 || start_pos + int64_t(tokens.size()) > kv.capacity())
    return fail("positions " + std::to_string(start_pos) + ".." + std::to_string(start_pos + int64_t(tokens.size()) - 1) +
                " exceed the KV capacity of " + std::to_string(kv.capacity()) + " tokens");
  // One sequence's contiguous store.
  struct contiguous final : kv_binding {
    backend& be;
    kv_store& kv;
    const model_config& c;
    std::span<const int32_t> pos;
    contiguous(backend& b, kv_store& s, const model_config& cfg) : be(b), kv(s), c(cfg) {}
    void write(int64_t layer, act k, act v) override { be.write_kv(kv, layer, pos, k, v); }
    void attend(int64_t layer, act q, act out) override {
      be.attention(q, kv, layer, pos, c.n_heads, c.n_kv_heads, c.head_dim, out);
    }
  };
  contiguous binding(be_, kv, c);
  size_t n = 0;  // tokens in the latest chunk; its last row holds the last token's state
  for (size_t begin = 0; begin < tokens.size(); begin += n) {
    n = std::min(tokens.size() - begin, size_t(max_tokens_));
    pos_.resize(n);
    std::iota(pos_.begin(), pos_.end(), int32_t(start_pos + int64_t(begin)));
    binding.pos = pos_;
    if (auto r = run_chunk(tokens.subspan(begin, n), pos_, binding); !r) return r;
    if (auto r = settle_collectives(); !r) return r;
  }
  // Only the last token's logits are needed for generation: norm and project one row.
  const act last = x_->view().row(int64_t(n) - 1);
  const act h = h_->view().first_rows(1);
  be_.rms_norm(last, *output_norm_, c.rms_eps, h);        // [1, dim]
  const act out = logits_->view().first_rows(1);           // [1, vocab]
  be_.matmul(h, *output_, nullptr, out);
  be_.to_host(out, logits);
  return be_.check();
}

expected<std::unique_ptr<paged_kv>> llama_forward::new_paged_kv(int64_t num_blocks, int64_t block_size) {
  const model_config& c = model_->config;
  if (num_blocks <= 0 || block_size <= 0)
    return fail("paged KV cache: " + std::to_string(num_blocks) + " blocks of " + std::to_string(block_size) +
                " positions: both must be positive");
  return be_.alloc_paged_kv(c.n_layers, num_blocks, block_size, c.kv_dim());
}

expected<void> llama_forward::forward_batch(const batch& b, paged_kv& kv, std::span<float> logits) {
  if (int64_t(logits.size()) != int64_t(b.logit_rows.size()) * model_->config.vocab_size)
    return fail("forward_batch: logits span must hold logit_rows x vocab floats");
  auto out = run_batch(b, kv);
  if (!out) return out.err();
  if (out->rows > 0) be_.to_host(*out, logits);
  return be_.check();
}

expected<void> llama_forward::forward_batch_sampled(const batch& b, paged_kv& kv,
                                                    std::span<const device_sampling> rows,
                                                    std::span<const penalty_entry> penalties, std::span<int32_t> ids) {
  if (!be_.samples_on_device()) return fail("forward_batch_sampled: the " + std::string(be_.name()) + " backend samples on the host");
  if (rows.size() != b.logit_rows.size() || ids.size() != b.logit_rows.size())
    return fail("forward_batch_sampled: one sampling row and one id per logit row");
  auto out = run_batch(b, kv);
  if (!out) return out.err();
  if (out->rows > 0) be_.sample(*out, rows, penalties, ids);
  return be_.check();
}

expected<act> llama_forward::run_batch(const batch& b, paged_kv& kv) {
  const model_config& c = model_->config;
  const int64_t n = int64_t(b.tokens.size());
  if (n == 0) return fail("forward_batch: no tokens");
  if (n > max_tokens_)
    return fail("forward_batch: " + std::to_string(n) + " tokens exceed the step budget of " +
                std::to_string(max_tokens_));
  if (b.pos.size() != b.tokens.size() || b.token_seq.size() != b.tokens.size())
    return fail("forward_batch: tokens, pos and token_seq must have the same length");
  for (int64_t i = 0; i < n; ++i) {
    const int32_t t = b.tokens[size_t(i)], p = b.pos[size_t(i)], s = b.token_seq[size_t(i)];
    if (t < 0 || t >= c.vocab_size)
      return fail("token id " + std::to_string(t) + " is outside the vocabulary [0, " + std::to_string(c.vocab_size) + ")");
    if (p < 0 || p >= c.max_position)
      return fail("position " + std::to_string(p) + " is outside the context [0, " + std::to_string(c.max_position) + ")");
    if (s < 0 || size_t(s) >= b.tables.size())
      return fail("forward_batch: token " + std::to_string(i) + " names sequence " + std::to_string(s) +
                  " of " + std::to_string(b.tables.size()));
    const auto& table = b.tables[size_t(s)];
    if (size_t(p / kv.block_size()) >= table.size())
      return fail("forward_batch: position " + std::to_string(p) + " of sequence " + std::to_string(s) +
                  " is beyond its block table of " + std::to_string(table.size()) + " blocks");
  }
  for (const auto& table : b.tables) {
    for (const int32_t block : table) {
      if (block < 0 || block >= kv.num_blocks())
        return fail("forward_batch: block " + std::to_string(block) + " is outside the cache of " +
                    std::to_string(kv.num_blocks()) + " blocks");
    }
  }
  for (const int32_t r : b.logit_rows) {
    if (r < 0 || r >= n) return fail("forward_batch: logit row " + std::to_string(r) + " is not a token of the batch");
  }

  // A decode step that a CUDA graph runs goes in padded to its bucket (decode_padding.hpp).
  const int64_t bucket = graph_bucket_for(b, kv);
  if (bucket > 0) pad_decode_batch(b.tokens, b.pos, b.token_seq, b.tables, bucket, kv.spare_block(), padding_);
  const bool padded = bucket > 0;
  const paged_batch pb = padded ? paged_batch{padding_.pos, padding_.token_seq, padding_.tables}
                                : paged_batch{b.pos, b.token_seq, b.tables};

  // The batch over the paged cache.
  struct paged final : kv_binding {
    backend& be;
    paged_kv& kv;
    const model_config& c;
    paged_batch pb;
    paged(backend& e, paged_kv& s, const model_config& cfg, paged_batch p) : be(e), kv(s), c(cfg), pb(p) {}
    void write(int64_t layer, act k, act v) override { be.write_paged_kv(kv, layer, pb, k, v); }
    void attend(int64_t layer, act q, act out) override {
      be.paged_attention(q, kv, layer, pb, c.n_heads, c.n_kv_heads, c.head_dim, out);
    }
  };
  paged binding(be_, kv, c, pb);
  if (padded) return run_graph_batch(n, bucket, !b.logit_rows.empty(), binding);
  if (auto r = run_chunk(b.tokens, b.pos, binding); !r) return r.err();
  if (auto r = settle_collectives(); !r) return r.err();

  // Logits of the wanted rows only: gather, norm, project.
  const int64_t m = int64_t(b.logit_rows.size());
  if (m == 0) return act{};
  if (m > logits_rows_) {
    logits_ = be_.alloc(m, c.vocab_size);
    logits_rows_ = m;
  }
  const act rows = h_->view().first_rows(m);                  // [m, dim]
  be_.gather_rows(x_->view().first_rows(n), b.logit_rows, rows);
  be_.rms_norm(rows, *output_norm_, c.rms_eps, rows);
  const act out = logits_->view().first_rows(m);              // [m, vocab]
  be_.matmul(rows, *output_, nullptr, out);
  return out;
}

int64_t llama_forward::graph_bucket_for(const batch& b, const paged_kv& kv) const {
  if (graph_max_batch_ <= 0 || !be_.captures_graphs() || kv.spare_block() < 0) return 0;
  // A collective inside a graph must be enqueued on the backend's stream (NCCL), not run on the host.
  if (comm_ != nullptr && !comm_->enqueues_on(be_.native_stream())) return 0;
  if (!is_graph_decode(b.token_seq, b.logit_rows, b.tables.size())) return 0;
  const int64_t bucket = graph_bucket(int64_t(b.tokens.size()));
  return bucket <= std::min(graph_max_batch_, max_tokens_) ? bucket : 0;
}

expected<act> llama_forward::run_graph_batch(int64_t n, int64_t bucket, bool logits, kv_binding& kv) {
  const model_config& c = model_->config;
  if (logits && bucket > logits_rows_) {
    logits_ = be_.alloc(bucket, c.vocab_size);
    logits_rows_ = bucket;
  }
  std::optional<error> failed;
  const auto ops = [this, &c, &kv, &failed, bucket, logits]() {
    if (auto r = run_chunk(padding_.tokens, padding_.pos, kv); !r) {
      failed = r.err();
      return;
    }
    if (!logits) return;
    const act x = x_->view().first_rows(bucket);                 // [bucket, dim]
    const act h = h_->view().first_rows(bucket);                 // [bucket, dim]
    be_.rms_norm(x, *output_norm_, c.rms_eps, h);
    be_.matmul(h, *output_, nullptr, logits_->view().first_rows(bucket));  // [bucket, vocab]
  };
  // The key: the batch's shape. The backend adds the launch arguments (buffers, splits).
  if (!be_.run_graph(uint64_t(bucket) * 2 + (logits ? 1 : 0), ops)) {
    failed.reset();  // graphs turned off (a capture failed): run the same ops eagerly
    ops();
  }
  if (failed) return *failed;
  if (auto r = settle_collectives(); !r) return r.err();
  return logits ? logits_->view().first_rows(n) : act{};
}

expected<void> llama_forward::reduce(act partial) {
  if (comm_ == nullptr || be_.staging()) return {};  // staging a graph launches nothing
  if (auto r = comm_->all_reduce_sum(std::span<float>(partial.data, size_t(partial.rows * partial.cols))); !r) return r;
  // On the backend's own stream (NCCL) the next kernels run after the sum: the host then waits
  // once per call (settle_collectives) instead of twice per layer.
  if (comm_->enqueues_on(be_.native_stream())) return {};
  return comm_->synchronize();  // the backend reads the sum next (a no-op for the CPU communicators)
}

expected<void> llama_forward::settle_collectives() {
  if (comm_ == nullptr) return {};
  return comm_->synchronize();  // bounded by the communicator's timeout: a dead peer fails the call here
}

expected<void> llama_forward::run_chunk(std::span<const int32_t> tokens, std::span<const int32_t> pos,
                                        kv_binding& kv) {
  const model_config& c = model_->config;
  const int64_t n = int64_t(tokens.size());
  const act x = x_->view().first_rows(n);        // [n, dim] residual stream
  const act h = h_->view().first_rows(n);        // [n, dim]
  const act q = q_->view().first_rows(n);        // [n, n_heads * head_dim]
  const act k = k_->view().first_rows(n);        // [n, n_kv_heads * head_dim]
  const act v = v_->view().first_rows(n);        // [n, n_kv_heads * head_dim]
  const act a = attn_->view().first_rows(n);     // [n, n_heads * head_dim]
  const act g = gate_->view().first_rows(n);     // [n, ffn_dim]
  const act u = up_->view().first_rows(n);       // [n, ffn_dim]

  be_.embed(*tok_embd_, tokens, x);
  be_.rms_norm(x, *layers_[0].attn_norm, c.rms_eps, h);
  for (size_t li = 0; li < layers_.size(); ++li) {
    const layer& l = layers_[li];
    // h = attn_norm(x) here (the previous layer's last add fused it).
    const matmul_job qkv[] = {{l.wq.get(), l.bq.get(), q}, {l.wk.get(), l.bk.get(), k}, {l.wv.get(), l.bv.get(), v}};
    be_.matmul_group(h, qkv);
    be_.rope(q, c.n_heads, c.head_dim, pos, inv_freq_, c.rope_interleaved);
    be_.rope(k, c.n_kv_heads, c.head_dim, pos, inv_freq_, c.rope_interleaved);
    kv.write(int64_t(li), k, v);
    kv.attend(int64_t(li), q, a);
    be_.matmul(a, *l.wo, nullptr, h);             // [n, dim] (a rank's partial sum under TP)
    if (auto r = reduce(h); !r) return r;         // no o bias in this family; one would go here
    be_.add_rms_norm(x, h, *l.ffn_norm, c.rms_eps, h);  // x += h; h = ffn_norm(x)
    const matmul_job gate_up[] = {{l.w_gate.get(), nullptr, g}, {l.w_up.get(), nullptr, u}};
    be_.matmul_group(h, gate_up);
    be_.silu_mul(g, u);
    be_.matmul(g, *l.w_down, nullptr, h);         // [n, dim] (a rank's partial sum under TP)
    if (auto r = reduce(h); !r) return r;         // no down bias in this family; one would go here
    if (li + 1 < layers_.size())
      be_.add_rms_norm(x, h, *layers_[li + 1].attn_norm, c.rms_eps, h);  // x += h; h = next attn_norm(x)
    else
      be_.add(x, h);
  }
  return {};
}

}  // namespace troupe::engine
