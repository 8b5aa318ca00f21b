// GPT-2's byte-to-unicode table, built once: printable Latin-1 bytes stand for themselves and the
// other 68 bytes take the code points from U+0100 upwards, in byte order.
#include "engine/tokenizer/byte_level.hpp"

#include <array>
#include <cstdint>

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

struct byte_tables {
  std::array<std::string, 256> spelling;
  std::array<int16_t, 324> byte_of_code_point;  // code points used are < 0x100 + 68; -1 = none

  byte_tables() {
    byte_of_code_point.fill(-1);
    char32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const char32_t cp = printable ? static_cast<char32_t>(b) : next_extra++;
      utf8_append(spelling[b], cp);
      byte_of_code_point[cp] = static_cast<int16_t>(b);
    }
  }
};

const byte_tables& tables() {
  static const byte_tables t;
  return t;
}

}  // namespace

std::string_view byte_level_char(unsigned char byte) { return tables().spelling[byte]; }

std::string byte_level_encode(std::string_view bytes) {
  const auto& t = tables();
  std::string out;
  out.reserve(bytes.size() + bytes.size() / 2);
  for (const char c : bytes) out += t.spelling[static_cast<unsigned char>(c)];
  return out;
}

std::string byte_level_decode(std::string_view token) {
  const auto& t = tables();
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const auto b0 = static_cast<unsigned char>(token[i]);
    char32_t cp = 0;
    if (b0 < 0x80) {
      cp = b0;
      i += 1;
    } else if (b0 >= 0xC2 && b0 <= 0xDF && i + 1 < token.size() &&
               (static_cast<unsigned char>(token[i + 1]) & 0xC0) == 0x80) {
      cp = (static_cast<char32_t>(b0 & 0x1F) << 6) |
           (static_cast<unsigned char>(token[i + 1]) & 0x3F);
      i += 2;
    } else {
      return std::string(token);  // longer (or invalid) characters are never in the byte alphabet
    }
    if (cp >= t.byte_of_code_point.size() || t.byte_of_code_point[cp] < 0)
      return std::string(token);
    out.push_back(static_cast<char>(t.byte_of_code_point[cp]));
  }
  return out;
}

}  // namespace troupe::engine
