// step_batch: validation and execution (see step_batch.hpp).
#include "engine/executor/step_batch.hpp"

#include <string>

namespace troupe::engine {

void step_batch::add_table(std::span<const int32_t> blocks) {
  if (table_offsets.empty()) table_offsets.push_back(0);
  tables.insert(tables.end(), blocks.begin(), blocks.end());
  table_offsets.push_back(int32_t(tables.size()));
}

step_batch batch_of(const step_plan& plan, std::vector<int32_t>& logit_rows) {
  step_batch b;
  logit_rows.clear();
  b.tokens.reserve(size_t(plan.num_tokens));
  b.pos.reserve(size_t(plan.num_tokens));
  b.token_seq.reserve(size_t(plan.num_tokens));
  for (const block_copy& c : plan.copies) b.copies.insert(b.copies.end(), {c.src, c.dst});
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const scheduled_seq& s = plan.seqs[i];
    b.add_table(s.block_table);
    for (size_t j = 0; j < s.tokens.size(); ++j) {
      b.tokens.push_back(s.tokens[j]);
      b.pos.push_back(int32_t(s.start_pos + int64_t(j)));
      b.token_seq.push_back(int32_t(i));
    }
    if (s.num_samples > 0) logit_rows.push_back(int32_t(b.tokens.size()) - 1);
  }
  return b;
}

expected<void> validate(const step_batch& b, int64_t num_blocks) {
  if (b.pos.size() != b.tokens.size() || b.token_seq.size() != b.tokens.size())
    return fail("step batch: tokens, pos and token_seq differ in length");
  if (b.copies.size() % 2 != 0) return fail("step batch: copies must be [src, dst] pairs");
  for (const int32_t block : b.copies) {
    if (block < 0 || block >= num_blocks)
      return fail("step batch: copied block " + std::to_string(block) + " is outside the cache of " +
                  std::to_string(num_blocks) + " blocks");
  }
  if (b.table_offsets.empty()) {
    if (!b.tables.empty() || !b.tokens.empty()) return fail("step batch: tokens without block tables");
    return {};
  }
  if (b.table_offsets.front() != 0 || b.table_offsets.back() != int32_t(b.tables.size()))
    return fail("step batch: table_offsets do not span the tables");
  for (size_t i = 1; i < b.table_offsets.size(); ++i) {
    if (b.table_offsets[i] < b.table_offsets[i - 1]) return fail("step batch: table_offsets decrease");
  }
  for (const int32_t s : b.token_seq) {
    if (s < 0 || size_t(s) >= b.num_seqs())
      return fail("step batch: token_seq " + std::to_string(s) + " names no sequence of " + std::to_string(b.num_seqs()));
  }
  return {};  // block ids inside the tables: forward_batch checks them against the cache
}

namespace {

// The copies, then `run` on the batch's forward_batch view.
template <class F>
expected<void> with_batch(llama_forward& fwd, paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                          F&& run) {
  if (auto ok = validate(b, kv.num_blocks()); !ok) return ok;
  for (size_t i = 0; i < b.copies.size(); i += 2) fwd.copy_kv_block(kv, b.copies[i], b.copies[i + 1]);
  if (b.tokens.empty()) return {};
  std::vector<std::span<const int32_t>> tables;
  tables.reserve(b.num_seqs());
  for (size_t s = 0; s < b.num_seqs(); ++s) {
    const auto from = size_t(b.table_offsets[s]), to = size_t(b.table_offsets[s + 1]);
    tables.emplace_back(b.tables.data() + from, to - from);
  }
  return run(llama_forward::batch{b.tokens, b.pos, b.token_seq, tables, logit_rows});
}

}  // namespace

expected<void> run_step_batch(llama_forward& fwd, paged_kv& kv, const step_batch& b,
                              std::span<const int32_t> logit_rows, std::span<float> logits) {
  return with_batch(fwd, kv, b, logit_rows,
                    [&fwd, &kv, logits](const llama_forward::batch& fb) { return fwd.forward_batch(fb, kv, logits); });
}

expected<void> run_step_batch_sampled(llama_forward& fwd, paged_kv& kv, const step_batch& b,
                                      std::span<const int32_t> logit_rows, std::span<const device_sampling> rows,
                                      std::span<const penalty_entry> penalties, std::span<int32_t> ids) {
  return with_batch(fwd, kv, b, logit_rows, [&fwd, &kv, rows, penalties, ids](const llama_forward::batch& fb) {
    return fwd.forward_batch_sampled(fb, kv, rows, penalties, ids);
  });
}

}  // namespace troupe::engine
