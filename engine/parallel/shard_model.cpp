// shard_model: row slices as views into the mapped checkpoint, column slices copied into buffers
// the shard owns; the shard's config is shard_config of the full one.
#include "engine/parallel/shard_model.hpp"

#include <cstring>
#include <string>
#include <vector>

namespace troupe::engine::parallel {
namespace {

// Rows [r.begin, r.end) of a 2-D weight, or elements of a 1-D bias: a view, no copy.
[[nodiscard]] expected<tensor_view> row_slice(const tensor_view& t, index_range r) {
  const int64_t cols = t.shape.size() >= 2 ? t.cols() : 1;
  const int64_t rows = t.shape.size() >= 2 ? t.rows() : t.numel();
  auto bytes = t.shape.size() >= 2 ? row_bytes(t.type, cols) : row_bytes(t.type, 1);
  if (t.shape.size() < 2 && t.type == dtype::q8_0) bytes.reset();  // 1-D q8_0 never occurs
  if (!bytes || r.begin < 0 || r.end > rows || r.begin > r.end)
    return fail("tensor '" + t.name + "': cannot take rows " + std::to_string(r.begin) + ".." +
                std::to_string(r.end) + " of " + std::to_string(rows) + " (" + std::string(dtype_name(t.type)) + ")");
  tensor_view s = t;
  s.data = t.data + size_t(r.begin) * *bytes;
  s.nbytes = size_t(r.size()) * *bytes;
  if (t.shape.size() >= 2) s.shape = {r.size(), cols};
  else s.shape = {r.size()};
  return s;
}

// Columns [c.begin, c.end) of a 2-D [out, in] weight, copied into `owned` (row-major [out, c.size()]).
[[nodiscard]] expected<tensor_view> column_slice(const tensor_view& t, index_range c,
                                                 std::vector<std::shared_ptr<const void>>& owned) {
  const auto skip = row_bytes(t.type, c.begin), take = row_bytes(t.type, c.size()), whole = row_bytes(t.type, t.cols());
  if (t.shape.size() != 2 || !skip || !take || !whole || c.begin < 0 || c.end > t.cols() || c.begin > c.end)
    return fail("tensor '" + t.name + "': cannot take columns " + std::to_string(c.begin) + ".." +
                std::to_string(c.end) + " of " + std::to_string(t.cols()) + " (" + std::string(dtype_name(t.type)) +
                (t.type == dtype::q8_0 ? ": a slice must start and end on a block of 32" : "") + ")");
  auto buf = std::make_shared<std::vector<std::byte>>(size_t(t.rows()) * *take);
  for (int64_t r = 0; r < t.rows(); ++r)
    std::memcpy(buf->data() + size_t(r) * *take, t.data + size_t(r) * *whole + *skip, *take);
  tensor_view s = t;
  s.data = buf->data();
  s.nbytes = buf->size();
  s.shape = {t.rows(), c.size()};
  owned.push_back(std::move(buf));
  return s;
}

}  // namespace

expected<std::shared_ptr<const model>> shard_model(std::shared_ptr<const model> full, const shard_plan& plan) {
  auto m = std::make_shared<model>();
  m->path = full->path;
  m->format = full->format;
  m->config = shard_config(full->config, plan);
  m->chat_template = full->chat_template;
  m->gguf = full->gguf;
  m->files = full->files;
  m->weights.tok_embd = full->weights.tok_embd;
  m->weights.output_norm = full->weights.output_norm;
  m->weights.output = full->weights.output;
  m->weights.rope_freq_factors = full->weights.rope_freq_factors;
  std::optional<error> failed;
  auto take = [&failed](expected<tensor_view> r) -> tensor_view {
    if (!r) {
      if (!failed) failed = r.err();
      return {};
    }
    return std::move(*r);
  };
  for (const layer_weights& f : full->weights.layers) {
    layer_weights l;
    l.attn_norm = f.attn_norm;
    l.ffn_norm = f.ffn_norm;
    l.wq = take(row_slice(f.wq, plan.q_rows));        // [q_dim / tp, dim]
    l.wk = take(row_slice(f.wk, plan.k_rows));        // [local kv_dim, dim]
    l.wv = take(row_slice(f.wv, plan.v_rows));        // [local kv_dim, dim]
    if (f.bq) l.bq = take(row_slice(*f.bq, plan.q_rows));
    if (f.bk) l.bk = take(row_slice(*f.bk, plan.k_rows));
    if (f.bv) l.bv = take(row_slice(*f.bv, plan.v_rows));
    l.wo = take(column_slice(f.wo, plan.o_cols, m->files));          // [dim, q_dim / tp]
    l.w_gate = take(row_slice(f.w_gate, plan.gate_rows));            // [ffn_dim / tp, dim]
    l.w_up = take(row_slice(f.w_up, plan.up_rows));                  // [ffn_dim / tp, dim]
    l.w_down = take(column_slice(f.w_down, plan.down_cols, m->files));  // [dim, ffn_dim / tp]
    m->weights.layers.push_back(std::move(l));
  }
  if (failed) return *failed;
  m->files.push_back(std::move(full));  // the row views point into its mappings
  return std::shared_ptr<const model>(std::move(m));
}

}  // namespace troupe::engine::parallel
