// The BPE model step: turns one pre-tokenized word (spelled in the vocabulary's alphabet, e.g.
// byte-level characters) into token ids by applying merges in rank order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/expected.hpp"

namespace troupe::engine {

// Thread-safety: encode_word() is const and may run concurrently; the word cache inside is
// guarded by a shared mutex (many readers, one writer).
class bpe_model {
 public:
  // `vocab` maps vocabulary strings to ids; `merges` are (left, right) strings in rank order.
  // Errors (a merge naming a string not in the vocabulary, or whose concatenation is not) say
  // which merge, as "<merges_key>[i]".
  [[nodiscard]] static expected<std::unique_ptr<bpe_model>> create(
      std::unordered_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, bool ignore_merges,
      std::optional<int32_t> unk, const std::string& merges_key);

  // Appends the ids of `word`. Characters missing from the vocabulary become `unk` when there is
  // one and are dropped otherwise (a byte-level vocabulary has every byte, so this never happens).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  [[nodiscard]] const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  bpe_model() = default;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  struct merge_result {
    int32_t rank;
    int32_t id;
  };
  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, merge_result> merges_;  // key: left id << 32 | right id
  bool ignore_merges_ = false;
  std::optional<int32_t> unk_;

  // Bounded cache of recent words: cleared when full, so memory stays bounded under any input.
  static constexpr size_t cache_max_entries = 1 << 15;
  static constexpr size_t cache_max_word = 128;  // longer words are not cached
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace troupe::engine
