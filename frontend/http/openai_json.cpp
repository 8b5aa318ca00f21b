// JSON-writing helpers shared by the OpenAI request errors and response writers: text that may not
// be valid UTF-8 (model output cut mid-character) and numbers that must stay valid JSON.
#include "frontend/http/openai_json.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "common/json_escape.hpp"
#include "common/utf8.hpp"

namespace troupe::frontend::http {

void append_json_text(std::string& out, std::string_view s) {
  if (utf8_is_valid(s)) {
    append_json_string(out, s);
    return;
  }
  std::string clean;
  clean.reserve(s.size() + 8);
  for (size_t i = 0; i < s.size();) {
    const auto seq = utf8_check(s, i);
    if (seq.status == utf8_status::valid) {
      clean.append(s.substr(i, seq.length));
    } else {
      clean.append(utf8_replacement);
    }
    i += seq.length;
  }
  append_json_string(out, clean);
}

void append_json_logprob(std::string& out, float value) {
  constexpr float floor = -9999.0f;
  if (!std::isfinite(value) || value < floor) {
    out += "-9999.0";
    return;
  }
  char buf[32];
  const int n = std::snprintf(buf, sizeof buf, "%.9g", static_cast<double>(value));
  out.append(buf, static_cast<size_t>(n));
}

void append_json_int(std::string& out, int64_t value) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, value);
  out.append(buf, r.ptr);
}

}  // namespace troupe::frontend::http
