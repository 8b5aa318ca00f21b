// Emits the longest valid UTF-8 prefix of the bytes seen so far, replacing invalid sequences and
// holding back only a trailing incomplete-but-valid start of a character.
#include "engine/tokenizer/incremental_decoder.hpp"

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {

std::string incremental_decoder::push(int32_t id) {
  if (skip_special_ && tok_->is_special(id)) return {};
  std::string bytes = tok_->token_bytes(id);
  if (strip_space_ && !bytes.empty()) {
    if (bytes.front() == ' ') bytes.erase(0, 1);
    strip_space_ = false;
  }
  pending_ += bytes;
  std::string out;
  size_t i = 0;
  while (i < pending_.size()) {
    const auto seq = utf8_check(pending_, i);
    if (seq.status == utf8_status::incomplete) break;  // wait for the next token
    if (seq.status == utf8_status::valid) {
      out.append(pending_, i, seq.length);
    } else {
      out += utf8_replacement;
    }
    i += seq.length;
  }
  pending_.erase(0, i);
  return out;
}

std::string incremental_decoder::flush() {
  std::string out;
  for (size_t i = 0; i < pending_.size();) {
    const auto seq = utf8_check(pending_, i);
    if (seq.status == utf8_status::valid) {
      out.append(pending_, i, seq.length);
    } else {
      out += utf8_replacement;
    }
    i += seq.length;
  }
  pending_.clear();
  return out;
}

}  // namespace troupe::engine
