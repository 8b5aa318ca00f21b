// UTF-8 validation helpers shared by the pre-tokenizer (which must hand PCRE2 only valid text) and
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

inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace troupe::engine
