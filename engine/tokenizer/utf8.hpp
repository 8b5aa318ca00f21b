// UTF-8 validation and character-class helpers shared by the pre-tokenizer (which must hand PCRE2 only valid text) and
// the incremental decoder (which must never cut a character in two).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace troupe::engine {

enum class utf8_status { valid, incomplete, invalid };

// What starts at s[i] (i < s.size()): a complete valid sequence (`length` bytes), a valid prefix of
// a sequence cut off by the end of `s` (`length` bytes, all that remain), or an invalid sequence
// (`length` is its maximal invalid subpart, at least 1, per Unicode's "U+FFFD substitution").
// Overlong forms, surrogates and code points above U+10FFFF are invalid.
struct utf8_sequence {
  utf8_status status;
  size_t length;
};
[[nodiscard]] utf8_sequence utf8_check(std::string_view s, size_t i);

[[nodiscard]] bool utf8_is_valid(std::string_view s);

// Appends the UTF-8 encoding of `cp` (must be a valid scalar value).
void utf8_append(std::string& out, char32_t cp);

// The code point of the valid sequence of `length` bytes at s[i] (as utf8_check reported it).
[[nodiscard]] char32_t utf8_decode(std::string_view s, size_t i, size_t length);

// Unicode's White_Space property (what Rust's char::is_whitespace and Hugging Face use).
[[nodiscard]] bool is_unicode_space(char32_t cp);

// A letter, a number, a combining mark or '_' (what Rust's regex calls a word character).
[[nodiscard]] bool is_word_char(char32_t cp);

// Length of the whitespace that `s` starts / ends with (invalid bytes are not whitespace).
[[nodiscard]] size_t leading_space_length(std::string_view s);
[[nodiscard]] size_t trailing_space_length(std::string_view s);

inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace troupe::engine
