// The text of one generated sequence as it streams: tokens in, UTF-8 text deltas out, cut before the
// first stop string, and text that might still grow into a stop string held back until it cannot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "engine/stop_strings.hpp"
#include "engine/tokenizer/incremental_decoder.hpp"

namespace troupe::engine {

class text_stream {
 public:
  // `at_text_start`: false for a continuation of a prompt (a SentencePiece "▁word" keeps its space).
  // The tokenizer must outlive the stream.
  text_stream(const tokenizer& tok, std::vector<std::string> stops, bool skip_special, bool at_text_start);

  struct delta {
    std::string text;           // ready to send (possibly empty)
    bool stop_string = false;   // a stop string matched: the text ends before it, nothing more follows
  };

  // The next generated token. A `stop_token` (eos or a stop id) adds no text and releases whatever
  // was held back.
  [[nodiscard]] delta push(int32_t token, bool stop_token);

  // The sequence ended for another reason (length, abort): the rest, including a partial character
  // as U+FFFD.
  [[nodiscard]] std::string finish();

  // All text so far (cut at a stop string).
  [[nodiscard]] const std::string& text() const { return text_; }

 private:
  incremental_decoder decoder_;
  stop_string_matcher stops_;
  std::string text_;
  size_t emitted_ = 0;  // bytes of text_ already returned
};

}  // namespace troupe::engine
