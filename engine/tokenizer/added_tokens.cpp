// Added-token splitting with a byte trie, so that thousands of reserved specials (Llama 3 has 256,
// a trained tiny tokenizer may have tens of thousands) cost one trie walk per candidate position.
#include "engine/tokenizer/added_tokens.hpp"

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

// Whether the character ending at text[end] (exclusive) is a word character.
bool word_char_before(std::string_view text, size_t end) {
  if (end == 0) return false;
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && (static_cast<unsigned char>(text[start]) & 0xC0) == 0x80)
    --start;
  const auto seq = utf8_check(text, start);
  return seq.status == utf8_status::valid && start + seq.length == end &&
         is_word_char(utf8_decode(text, start, seq.length));
}

// Whether the character starting at text[begin] is a word character.
bool word_char_at(std::string_view text, size_t begin) {
  if (begin >= text.size()) return false;
  const auto seq = utf8_check(text, begin);
  return seq.status == utf8_status::valid && is_word_char(utf8_decode(text, begin, seq.length));
}

}  // namespace

added_token_matcher::added_token_matcher(std::vector<added_token> tokens)
    : tokens_(std::move(tokens)) {
  terminal_.push_back(-1);
  for (size_t t = 0; t < tokens_.size(); ++t) {
    const std::string& s = tokens_[t].content;
    if (s.empty()) continue;  // an empty token would match everywhere; it is never matched
    first_byte_[static_cast<unsigned char>(s[0])] = true;
    uint32_t node = 0;
    for (const char c : s) {
      const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(c);
      auto it = edges_.find(key);
      if (it == edges_.end()) {
        it = edges_.emplace(key, static_cast<uint32_t>(terminal_.size())).first;
        terminal_.push_back(-1);
      }
      node = it->second;
    }
    // With duplicate contents the later entry wins, as a later added token overrides in HF.
    terminal_[node] = static_cast<int32_t>(t);
  }
}

int32_t added_token_matcher::longest_at(std::string_view text, size_t pos,
                                        bool parse_special) const {
  int32_t best = -1;
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    const uint64_t key = (static_cast<uint64_t>(node) << 8) | static_cast<unsigned char>(text[i]);
    const auto it = edges_.find(key);
    if (it == edges_.end()) break;
    node = it->second;
    const int32_t t = terminal_[node];
    if (t < 0) continue;
    const added_token& tok = tokens_[t];
    if (tok.special && !parse_special) continue;
    if (tok.single_word) {
      const size_t end = i + 1;
      if (word_char_before(text, pos) || word_char_at(text, end)) continue;
    }
    best = t;
  }
  return best;
}

void added_token_matcher::split(std::string_view text, bool parse_special,
                                std::vector<segment>& out) const {
  size_t plain_start = 0;  // start of the plain text not yet emitted
  size_t pos = 0;
  while (pos < text.size()) {
    if (!first_byte_[static_cast<unsigned char>(text[pos])]) {
      ++pos;
      continue;
    }
    const int32_t t = longest_at(text, pos, parse_special);
    if (t < 0) {
      ++pos;
      continue;
    }
    const added_token& tok = tokens_[t];
    size_t begin = pos;
    size_t end = pos + tok.content.size();
    if (tok.lstrip) begin -= trailing_space_length(text.substr(plain_start, begin - plain_start));
    if (tok.rstrip) end += leading_space_length(text.substr(end));
    if (begin > plain_start) out.push_back({text.substr(plain_start, begin - plain_start), -1});
    out.push_back({text.substr(begin, end - begin), tok.id});
    plain_start = pos = end;
  }
  if (plain_start < text.size()) out.push_back({text.substr(plain_start), -1});
}

}  // namespace troupe::engine
