// A compiled pre-tokenizer regex (PCRE2, UTF + UCP, JIT) that cuts text into the matches and the
// gaps between them (Hugging Face's Split with behavior "Isolated"), plus the patterns of the
// byte-level BPE families.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

struct pcre2_real_code_8;

namespace troupe::engine {

inline constexpr std::string_view gpt2_split_pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view llama3_split_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
inline constexpr std::string_view qwen2_split_pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Thread-safety: split() may be called concurrently (the compiled code is shared read-only; match
// state is per call).
class regex_splitter {
 public:
  // Compiles `pattern`; the error carries PCRE2's message and the offset in the pattern.
  [[nodiscard]] static expected<std::unique_ptr<regex_splitter>> create(std::string pattern);
  ~regex_splitter();
  regex_splitter(const regex_splitter&) = delete;
  regex_splitter& operator=(const regex_splitter&) = delete;

  // Appends to `out` the pieces of `text`, which must be valid UTF-8: each match, and each
  // non-empty stretch between matches, in order, so the pieces concatenate to `text`. Empty
  // matches are skipped. A hostile pattern that exceeds the match limit ends the splitting: the
  // rest of the text becomes one piece (it still encodes, only less compactly).
  void split(std::string_view text, std::vector<std::string_view>& out) const;

  // The same cut, with `is_match[k]` telling whether out[k] is a match (true) or a gap.
  void split_marked(std::string_view text, std::vector<std::string_view>& out,
                    std::vector<bool>& is_match) const;

  [[nodiscard]] const std::string& pattern() const { return pattern_; }

 private:
  regex_splitter(std::string pattern, pcre2_real_code_8* code)
      : pattern_(std::move(pattern)), code_(code) {}
  std::string pattern_;
  pcre2_real_code_8* code_;
};

// Escapes `literal` so that it matches itself (for Split patterns given as {"String": ...}).
[[nodiscard]] std::string regex_escape(std::string_view literal);

}  // namespace troupe::engine
