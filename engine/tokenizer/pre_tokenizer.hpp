// The pre-tokenization step: cuts a stretch of text (between added tokens, after normalization)
// into words that the BPE model encodes one at a time. A list of steps, as Hugging Face's
// Sequence runs them: regex splits, ByteLevel's prefix space, Metaspace.
#pragma once

#include <deque>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"
#include "engine/tokenizer/regex_split.hpp"
#include "engine/tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {

// Thread-safety: split() is const and may run concurrently.
class pre_tokenizer {
 public:
  pre_tokenizer() = default;
  // Compiles the steps' regexes; errors name the step's key.
  [[nodiscard]] static expected<pre_tokenizer> create(std::vector<pre_step> steps);

  // Words of `text` in order. `at_input_start`: the text begins the whole input (Metaspace's
  // "first" prepend scheme). Invalid UTF-8 bytes never reach the regexes: each becomes a word of
  // its own, so any byte string still encodes (and decodes back) losslessly. Views point into
  // `text` or into `storage` (which keeps rewritten copies alive; a deque so they never move).
  void split(std::string_view text, bool at_input_start, std::vector<std::string_view>& words,
             std::deque<std::string>& storage) const;

  [[nodiscard]] bool empty() const { return steps_.empty(); }

 private:
  struct compiled_step {
    pre_step step;
    std::shared_ptr<const regex_splitter> regex;  // split steps only
  };
  std::vector<compiled_step> steps_;
};

}  // namespace troupe::engine
