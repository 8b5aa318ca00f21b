// The normalization step: rewrites a stretch of text (between added tokens) before it is
// pre-tokenized, as Hugging Face's normalizers do (NFC for Qwen2; Prepend "▁" and Replace " " ->
// "▁" for SentencePiece families).
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {

// Thread-safety: immutable; apply() may run concurrently.
class normalizer {
 public:
  normalizer() = default;
  explicit normalizer(std::vector<normalizer_step> steps) : steps_(std::move(steps)) {}

  [[nodiscard]] bool empty() const { return steps_.empty(); }

  // The normalized text. Unicode forms and lowercasing (utf8proc, Unicode 15) touch only valid
  // UTF-8 stretches; invalid bytes pass through unchanged so that any input still encodes.
  // Limits: lowercasing is the simple per-character mapping (no final-sigma or other special
  // casing rules); "whitespace" for Strip is Unicode's White_Space property.
  [[nodiscard]] std::string apply(std::string_view text) const;

 private:
  std::vector<normalizer_step> steps_;
};

}  // namespace troupe::engine
