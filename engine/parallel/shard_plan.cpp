// make_shard_plan and shard_config: the divisibility rules of Megatron-style tensor parallelism
// and the head, row and column ranges they give each rank.
#include "engine/parallel/shard_plan.hpp"

#include <string>

namespace troupe::engine::parallel {
namespace {

[[nodiscard]] index_range slice(int64_t total, int rank, int tp) {
  const int64_t per = total / tp;
  return {rank * per, (rank + 1) * per};
}

[[nodiscard]] index_range scaled(index_range r, int64_t factor) { return {r.begin * factor, r.end * factor}; }

}  // namespace

expected<shard_plan> make_shard_plan(const model_config& c, int rank, int tp) {
  const std::string prefix = "tensor parallelism with tp = " + std::to_string(tp) + ": ";
  auto bad = [&prefix](const char* field, int64_t value, const char* why) {
    return fail(prefix + field + " = " + std::to_string(value) + " " + why);
  };
  if (tp < 1) return fail(prefix + "tp must be at least 1");
  if (rank < 0 || rank >= tp) return fail(prefix + "rank " + std::to_string(rank) + " is out of range");
  if (c.n_heads <= 0) return bad("num_attention_heads", c.n_heads, "must be positive");
  if (c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    return bad("num_key_value_heads", c.n_kv_heads, "must be positive and divide num_attention_heads");
  if (c.head_dim <= 0) return bad("head_dim", c.head_dim, "must be positive");
  if (c.ffn_dim <= 0) return bad("intermediate_size", c.ffn_dim, "must be positive");
  if (c.n_heads % tp != 0) return bad("num_attention_heads", c.n_heads, "is not divisible by tp");
  if (c.n_kv_heads % tp != 0 && tp % c.n_kv_heads != 0)
    return bad("num_key_value_heads", c.n_kv_heads, "and tp must divide one another (kv heads are split "
                                                    "when tp divides them, replicated when they divide tp)");
  if (c.ffn_dim % tp != 0) return bad("intermediate_size", c.ffn_dim, "is not divisible by tp");

  shard_plan p;
  p.rank = rank;
  p.tp = tp;
  p.q_heads = slice(c.n_heads, rank, tp);
  p.kv_replicated = c.n_kv_heads < tp;
  if (p.kv_replicated) {
    // tp / n_kv_heads consecutive ranks share a kv head: their q heads make up its group.
    const int64_t kv = rank / (tp / c.n_kv_heads);
    p.kv_heads = {kv, kv + 1};
  } else {
    p.kv_heads = slice(c.n_kv_heads, rank, tp);
  }
  p.q_rows = scaled(p.q_heads, c.head_dim);
  p.k_rows = scaled(p.kv_heads, c.head_dim);
  p.v_rows = p.k_rows;
  p.gate_rows = slice(c.ffn_dim, rank, tp);
  p.up_rows = p.gate_rows;
  p.o_cols = p.q_rows;
  p.down_cols = p.gate_rows;
  return p;
}

model_config shard_config(const model_config& config, const shard_plan& plan) {
  model_config local = config;
  local.n_heads = plan.q_heads.size();
  local.n_kv_heads = plan.kv_heads.size();
  local.ffn_dim = plan.gate_rows.size();
  return local;
}

}  // namespace troupe::engine::parallel
