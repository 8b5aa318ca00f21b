// Added-token splitting: finds added tokens (specials such as <|eot_id|> and user-defined ones)
// written literally in the text, leftmost and then longest first, before any pre-tokenization.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace troupe::engine {

struct added_token {
  int32_t id = 0;
  std::string content;
  bool special = false;      // control token: matched only when parsing specials
  bool lstrip = false;       // swallows whitespace on its left
  bool rstrip = false;       // swallows whitespace on its right
  bool single_word = false;  // matches only when not inside a word
  bool normalized = false;   // matched in the normalized text rather than the raw text
};

// Thread-safety: immutable after construction; split() may run concurrently.
class added_token_matcher {
 public:
  added_token_matcher() = default;
  explicit added_token_matcher(std::vector<added_token> tokens);

  // A piece of the input: an added token (id >= 0) or plain text (id == -1) for the pre-tokenizer.
  struct segment {
    std::string_view text;
    int32_t id;
  };
  // Cuts `text` into segments. Special tokens are recognised only when `parse_special`; non-special
  // added tokens always are (llama.cpp's and Hugging Face's behaviour).
  // lstrip/rstrip swallow Unicode whitespace (White_Space); single_word looks at Unicode letters,
  // numbers, marks and '_' next to the match.
  void split(std::string_view text, bool parse_special, std::vector<segment>& out) const;

  [[nodiscard]] const std::vector<added_token>& tokens() const { return tokens_; }

 private:
  // Longest allowed token starting at `pos`, as an index into tokens_, or -1.
  [[nodiscard]] int32_t longest_at(std::string_view text, size_t pos, bool parse_special) const;

  std::vector<added_token> tokens_;
  // A byte trie: node 0 is the root; edges are keyed by (node << 8 | byte).
  std::unordered_map<uint64_t, uint32_t> edges_;
  std::vector<int32_t> terminal_;  // per node: index into tokens_, or -1
  bool first_byte_[256] = {};
};

}  // namespace troupe::engine
