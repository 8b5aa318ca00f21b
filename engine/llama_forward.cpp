// llama_forward: one decoder stack over the backend ops; shapes in comments, n = tokens in the chunk.
#include "engine/llama_forward.hpp"

#include <numeric>

namespace troupe::engine {

llama_forward::llama_forward(std::shared_ptr<const model> m, backend& be, int64_t max_tokens)
    : model_(std::move(m)), be_(be), max_tokens_(max_tokens) {}

expected<std::unique_ptr<llama_forward>> llama_forward::create(std::shared_ptr<const model> m, backend& be,
                                                               int64_t max_tokens) {
  if (max_tokens <= 0) return fail("llama_forward: max_tokens must be positive");
  std::unique_ptr<llama_forward> f(new llama_forward(std::move(m), be, max_tokens));
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
  size_t n = 0;  // tokens in the latest chunk; its last row holds the last token's state
  for (size_t begin = 0; begin < tokens.size(); begin += n) {
    n = std::min(tokens.size() - begin, size_t(max_tokens_));
    pos_.resize(n);
    std::iota(pos_.begin(), pos_.end(), int32_t(start_pos + int64_t(begin)));
    run_chunk(tokens.subspan(begin, n), pos_, kv);
  }
  // Only the last token's logits are needed for generation: norm and project one row.
  const act last = x_->view().row(int64_t(n) - 1);
  const act h = h_->view().first_rows(1);
  be_.rms_norm(last, *output_norm_, c.rms_eps, h);        // [1, dim]
  be_.matmul(h, *output_, nullptr, logits_->view());       // [1, vocab]
  be_.to_host(logits_->view(), logits);
  return {};
}

void llama_forward::run_chunk(std::span<const int32_t> tokens, std::span<const int32_t> pos, kv_store& kv) {
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
  for (size_t li = 0; li < layers_.size(); ++li) {
    const layer& l = layers_[li];
    be_.rms_norm(x, *l.attn_norm, c.rms_eps, h);
    be_.matmul(h, *l.wq, l.bq.get(), q);
    be_.matmul(h, *l.wk, l.bk.get(), k);
    be_.matmul(h, *l.wv, l.bv.get(), v);
    be_.rope(q, c.n_heads, c.head_dim, pos, inv_freq_, c.rope_interleaved);
    be_.rope(k, c.n_kv_heads, c.head_dim, pos, inv_freq_, c.rope_interleaved);
    be_.write_kv(kv, int64_t(li), pos, k, v);
    be_.attention(q, kv, int64_t(li), pos, c.n_heads, c.n_kv_heads, c.head_dim, a);
    be_.matmul(a, *l.wo, nullptr, h);             // [n, dim]
    be_.add(x, h);
    be_.rms_norm(x, *l.ffn_norm, c.rms_eps, h);
    be_.matmul(h, *l.w_gate, nullptr, g);
    be_.matmul(h, *l.w_up, nullptr, u);
    be_.silu_mul(g, u);
    be_.matmul(g, *l.w_down, nullptr, h);         // [n, dim]
    be_.add(x, h);
  }
}

}  // namespace troupe::engine
