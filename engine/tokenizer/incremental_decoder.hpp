// Streaming detokenization: turns ids into text deltas as they are generated, never cutting a
// UTF-8 character in two (a byte-level token may hold only part of a CJK character or emoji).
#pragma once

#include <cstdint>
#include <string>

#include "engine/tokenizer/tokenizer.hpp"

namespace troupe::engine {

// Threading: one decoder per stream, used from one thread at a time; it only reads the tokenizer
// (whose const methods are thread-safe), which must outlive it.
// For ids whose bytes are valid UTF-8 overall, the concatenated deltas (push... then flush) equal
// tokenizer.decode(ids, skip_special), including the leading space a SentencePiece tokenizer
// drops. Invalid bytes come out as U+FFFD, one per maximal invalid subpart, so every delta is
// valid UTF-8.
class incremental_decoder {
 public:
  // `at_text_start`: the ids begin the text (as decode() sees them). False for a continuation,
  // e.g. the tokens generated after a prompt, whose first "▁word" keeps its space.
  explicit incremental_decoder(const tokenizer& tok, bool skip_special = false,
                               bool at_text_start = true)
      : tok_(&tok),
        skip_special_(skip_special),
        strip_space_(at_text_start && tok.strips_leading_space()) {}

  // Adds one token and returns the text that became complete (possibly empty).
  [[nodiscard]] std::string push(int32_t id);

  // Returns whatever is held back (an unfinished character, as U+FFFD) and resets.
  [[nodiscard]] std::string flush();

  // Bytes held back waiting for the rest of a character (0 to 3).
  [[nodiscard]] size_t pending() const { return pending_.size(); }

 private:
  const tokenizer* tok_;
  bool skip_special_;
  bool strip_space_;  // the next byte, if a space, is dropped (then never again)
  std::string pending_;
};

}  // namespace troupe::engine
