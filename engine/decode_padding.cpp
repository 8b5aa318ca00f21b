#include "engine/decode_padding.hpp"

namespace troupe::engine {

int64_t graph_bucket(int64_t n) {
  if (n <= 1) return 1;
  if (n <= 2) return 2;
  if (n <= 4) return 4;
  return (n + 7) / 8 * 8;
}

bool is_graph_decode(std::span<const int32_t> token_seq, std::span<const int32_t> logit_rows, size_t num_tables) {
  if (token_seq.empty()) return false;
  if (!logit_rows.empty()) {
    if (logit_rows.size() != token_seq.size()) return false;
    for (size_t i = 0; i < logit_rows.size(); ++i)
      if (logit_rows[i] != int32_t(i)) return false;
  }
  std::vector<bool> seen(num_tables, false);
  for (const int32_t s : token_seq) {
    if (s < 0 || size_t(s) >= num_tables || seen[size_t(s)]) return false;
    seen[size_t(s)] = true;
  }
  return true;
}

void pad_decode_batch(std::span<const int32_t> tokens, std::span<const int32_t> pos,
                      std::span<const int32_t> token_seq, std::span<const std::span<const int32_t>> tables,
                      int64_t bucket, int32_t spare_block, decode_padding& out) {
  const size_t n = tokens.size(), total = size_t(bucket > int64_t(n) ? bucket : int64_t(n));
  const auto pad_seq = int32_t(tables.size());
  out.tokens.assign(tokens.begin(), tokens.end());
  out.tokens.resize(total, 0);
  out.pos.assign(pos.begin(), pos.end());
  out.pos.resize(total, 0);
  out.token_seq.assign(token_seq.begin(), token_seq.end());
  out.token_seq.resize(total, pad_seq);
  out.spare_table[0] = spare_block;
  out.tables.assign(tables.begin(), tables.end());
  out.tables.emplace_back(out.spare_table, 1);
}

}  // namespace troupe::engine
