// The pre-tokenization step: cuts a stretch of text (between added tokens) into words that the BPE
// model encodes one at a time. A list of steps, as Hugging Face's Sequence runs them.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/regex_split.hpp"

namespace troupe::engine {

// One step: split every current piece with a regex, or prepend a space to every piece that does
// not start with one (ByteLevel's add_prefix_space).
struct pre_tokenizer_step {
  std::shared_ptr<const regex_splitter> split;  // null for the prefix-space step
};

// Thread-safety: split() is const and may run concurrently.
class pre_tokenizer {
 public:
  pre_tokenizer() = default;
  explicit pre_tokenizer(std::vector<pre_tokenizer_step> steps) : steps_(std::move(steps)) {}

  // Words of `text` in order. Invalid UTF-8 bytes never reach the regexes: each becomes a word of
  // its own, so any byte string still encodes (and decodes back) losslessly. Views point into
  // `text` or into `storage` (which keeps prefixed copies alive; a deque so they never move).
  void split(std::string_view text, std::vector<std::string_view>& words,
             std::deque<std::string>& storage) const;

  [[nodiscard]] const std::vector<pre_tokenizer_step>& steps() const { return steps_; }

 private:
  std::vector<pre_tokenizer_step> steps_;
};

}  // namespace troupe::engine
