// UTF-8 primitives shared by the tokenizer (which must hand PCRE2 only valid text and never cut a
// character when streaming) and the chat-template interpreter (Python str semantics on UTF-8):
// one decoder of a single sequence, so that every part agrees on what is valid.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace troupe {

enum class utf8_status { valid, incomplete, invalid };

// What starts at s[i] (i < s.size()): a complete valid sequence (`length` bytes), a valid prefix of
// a sequence cut off by the end of `s` (`length` bytes, all that remain), or an invalid sequence
// (`length` is its maximal invalid subpart, at least 1, per Unicode's "U+FFFD substitution").
// Overlong forms, surrogates and code points above U+10FFFF are invalid.
struct utf8_sequence {
  utf8_status status;
  size_t length;
};

[[nodiscard]] inline utf8_sequence utf8_check(std::string_view s, size_t i) {
  const auto b0 = static_cast<unsigned char>(s[i]);
  if (b0 < 0x80) return {utf8_status::valid, 1};
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlongs
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;  // no overlongs
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {utf8_status::invalid, 1};
  }
  for (size_t k = 1; k <= need; ++k) {
    if (i + k >= s.size()) return {utf8_status::incomplete, k};
    const auto b = static_cast<unsigned char>(s[i + k]);
    const unsigned char l = k == 1 ? lo : 0x80;
    const unsigned char h = k == 1 ? hi : 0xBF;
    if (b < l || b > h) return {utf8_status::invalid, k};
  }
  return {utf8_status::valid, need + 1};
}

[[nodiscard]] inline bool utf8_is_valid(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto seq = utf8_check(s, i);
    if (seq.status != utf8_status::valid) return false;
    i += seq.length;
  }
  return true;
}

// The code point of the valid sequence of `length` bytes at s[i] (as utf8_check reported it).
[[nodiscard]] inline char32_t utf8_decode(std::string_view s, size_t i, size_t length) {
  const auto b = [&](size_t k) { return static_cast<char32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (length) {
    case 1:
      return b(0);
    case 2:
      return ((b(0) & 0x1F) << 6) | (b(1) & 0x3F);
    case 3:
      return ((b(0) & 0x0F) << 12) | ((b(1) & 0x3F) << 6) | (b(2) & 0x3F);
    default:
      return ((b(0) & 0x07) << 18) | ((b(1) & 0x3F) << 12) | ((b(2) & 0x3F) << 6) | (b(3) & 0x3F);
  }
}

// Appends the UTF-8 encoding of `cp` (must be a valid scalar value).
inline void utf8_append(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out.push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

inline constexpr std::string_view utf8_replacement = "\xEF\xBF\xBD";  // U+FFFD

}  // namespace troupe
