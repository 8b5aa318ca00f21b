// Writes a string as a JSON string literal. The project parses JSON with simdjson and writes its few
// JSON documents (configs, CLI output) by hand with this.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace troupe {

// Appends `s` to `out` as a quoted JSON string. Bytes >= 0x80 are copied as they are (valid UTF-8
// in, valid UTF-8 out); control characters are escaped.
inline void append_json_string(std::string& out, std::string_view s) {
  out += '"';
  for (char ch : s) {
    const auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else {
          out += ch;
        }
    }
  }
  out += '"';
}

[[nodiscard]] inline std::string json_string(std::string_view s) {
  std::string out;
  append_json_string(out, s);
  return out;
}

}  // namespace troupe
