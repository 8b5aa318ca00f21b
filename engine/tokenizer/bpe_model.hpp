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

// How the model treats characters that are not in its vocabulary, and whole-word matches.
struct bpe_options {
  bool ignore_merges = false;  // a word that is a vocabulary token is that token (Llama 3)
  bool byte_fallback = false;  // an unknown character becomes its UTF-8 bytes as <0xXX> tokens
  bool fuse_unk = false;       // consecutive unknown characters become one unk
  std::optional<int32_t> unk;
  // SentencePiece vocabularies: the word-start marker ("▁"). When no vocabulary token holds the
  // marker right after another character, no merge can cross the point before a marker that
  // follows another character, so a long word (a whole sentence: these families have no
  // pre-tokenizer) is cut there and encoded piece by piece, exactly, through the word cache.
  std::string word_marker;
};

// Thread-safety: encode_word() is const and may run concurrently; the word cache inside is
// guarded by a shared mutex (many readers, one writer).
class bpe_model {
 public:
  // `vocab` maps vocabulary strings to ids; `merges` are (left, right) strings in rank order.
  // Errors (a merge naming a string not in the vocabulary, or whose concatenation is not) say
  // which merge, as "<merges_key>[i]".
  [[nodiscard]] static expected<std::unique_ptr<bpe_model>> create(
      std::unordered_map<std::string, int32_t> vocab,
      const std::vector<std::pair<std::string, std::string>>& merges, const bpe_options& options,
      const std::string& merges_key);

  // Appends the ids of `word`. A character missing from the vocabulary becomes byte tokens (with
  // byte_fallback, when all of its bytes have one), else `unk` when there is one, else nothing
  // (a byte-level vocabulary has every byte, so this never happens there).
  void encode_word(std::string_view word, std::vector<int32_t>& out) const;

  [[nodiscard]] const std::unordered_map<std::string, int32_t>& vocab() const { return vocab_; }

 private:
  bpe_model() = default;
  void encode_piece(std::string_view word, std::vector<int32_t>& out) const;
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;

  struct merge_result {
    int32_t rank;
    int32_t id;
  };
  std::unordered_map<std::string, int32_t> vocab_;
  std::unordered_map<uint64_t, merge_result> merges_;  // key: left id << 32 | right id
  bpe_options options_;
  bool cut_at_marker_ = false;  // see bpe_options::word_marker
  int32_t byte_ids_[256] = {};  // byte_fallback: the id of "<0xXX>", or -1

  // Bounded cache of recent words: cleared when full, so memory stays bounded under any input.
  static constexpr size_t cache_max_entries = 1 << 15;
  static constexpr size_t cache_max_word = 128;  // longer words are not cached
  mutable std::shared_mutex cache_mutex_;
  mutable std::unordered_map<std::string, std::vector<int32_t>> cache_;
};

}  // namespace troupe::engine
