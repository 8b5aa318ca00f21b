// Unicode character classes for the tokenizer (utf8proc for general categories).
#include "engine/tokenizer/utf8.hpp"

#include <utf8proc.h>

namespace troupe::engine {

bool is_unicode_space(char32_t cp) {
  // The White_Space property of Unicode 15 (PropList.txt): 25 code points, stable for years.
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool is_word_char(char32_t cp) {
  if (cp < 0x80) {
    return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') ||
           cp == '_';
  }
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(cp))) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_MC:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_ND:
    case UTF8PROC_CATEGORY_NL:
    case UTF8PROC_CATEGORY_NO:
    case UTF8PROC_CATEGORY_PC:
      return true;
    default:
      return false;
  }
}

size_t leading_space_length(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto seq = utf8_check(s, i);
    if (seq.status != utf8_status::valid || !is_unicode_space(utf8_decode(s, i, seq.length))) break;
    i += seq.length;
  }
  return i;
}

size_t trailing_space_length(std::string_view s) {
  size_t end = s.size();
  while (end > 0) {
    size_t start = end - 1;  // back up to the lead byte of the last character (at most 3 steps)
    while (start > 0 && end - start < 4 && (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    const auto seq = utf8_check(s, start);
    if (seq.status != utf8_status::valid || start + seq.length != end ||
        !is_unicode_space(utf8_decode(s, start, seq.length))) {
      break;
    }
    end = start;
  }
  return s.size() - end;
}

}  // namespace troupe::engine
