// Python str operations on UTF-8 (see text.hpp).
#include "engine/chat/text.hpp"

#include "common/utf8.hpp"

#include <algorithm>

namespace troupe::engine::chat::text {
namespace {

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

bool is_ascii_upper(char c) { return c >= 'A' && c <= 'Z'; }
bool is_ascii_lower(char c) { return c >= 'a' && c <= 'z'; }
bool is_cased(char c) { return is_ascii_upper(c) || is_ascii_lower(c); }
char to_upper(char c) { return is_ascii_lower(c) ? static_cast<char>(c - 'a' + 'A') : c; }
char to_lower(char c) { return is_ascii_upper(c) ? static_cast<char>(c - 'A' + 'a') : c; }

// Whether `cp` is one of `chars` (a UTF-8 string of characters).
bool is_one_of(char32_t cp, std::string_view chars) {
  for (size_t i = 0; i < chars.size();) {
    size_t len = 0;
    if (decode(chars, i, len) == cp) return true;
    i += len;
  }
  return false;
}

// Length of the line break at s[i] (0 if none), per str.splitlines.
size_t line_break_at(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == '\r') return i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
  if (c == '\n' || c == '\v' || c == '\f' || (c >= 0x1C && c <= 0x1E)) return 1;
  if (c >= 0x80) {
    size_t len = 0;
    const char32_t cp = decode(s, i, len);
    if (cp == 0x85 || cp == 0x2028 || cp == 0x2029) return len;
  }
  return 0;
}

}  // namespace

char32_t decode(std::string_view s, size_t i, size_t& len) {
  const utf8_sequence seq = utf8_check(s, i);
  if (seq.status != utf8_status::valid) {
    len = 1;
    return 0xFFFD;
  }
  len = seq.length;
  return utf8_decode(s, i, seq.length);
}

size_t length(std::string_view s) {
  size_t n = 0;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    (void)decode(s, i, len);
    i += len;
    ++n;
  }
  return n;
}

std::vector<size_t> char_offsets(std::string_view s) {
  std::vector<size_t> offsets;
  offsets.reserve(s.size() + 1);
  for (size_t i = 0; i < s.size();) {
    offsets.push_back(i);
    size_t len = 0;
    (void)decode(s, i, len);
    i += len;
  }
  offsets.push_back(s.size());
  return offsets;
}

size_t char_index(std::string_view s, size_t byte) { return length(s.substr(0, byte)); }

bool is_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

std::string_view strip(std::string_view s, strip_side side, std::optional<std::string_view> chars) {
  const auto strippable = [&](char32_t cp) { return chars ? is_one_of(cp, *chars) : is_space(cp); };
  size_t begin = 0;
  if (side != strip_side::right) {
    while (begin < s.size()) {
      size_t len = 0;
      if (!strippable(decode(s, begin, len))) break;
      begin += len;
    }
  }
  size_t end = s.size();
  if (side != strip_side::left) {
    while (end > begin) {
      size_t start = end - 1;
      while (start > begin && is_continuation(static_cast<unsigned char>(s[start]))) --start;
      size_t len = 0;
      const char32_t cp = decode(s, start, len);
      if (start + len != end || !strippable(cp)) break;  // an invalid tail is never stripped
      end = start;
    }
  }
  return s.substr(begin, end - begin);
}

std::vector<std::string> split(std::string_view s, std::optional<std::string_view> sep, int64_t maxsplit) {
  std::vector<std::string> parts;
  if (sep) {
    size_t start = 0;
    while (maxsplit < 0 || static_cast<int64_t>(parts.size()) < maxsplit) {
      const size_t at = s.find(*sep, start);
      if (at == std::string_view::npos) break;
      parts.emplace_back(s.substr(start, at - start));
      start = at + sep->size();
    }
    parts.emplace_back(s.substr(start));
    return parts;
  }
  size_t i = 0;
  const auto skip_space = [&] {
    while (i < s.size()) {
      size_t len = 0;
      if (!is_space(decode(s, i, len))) break;
      i += len;
    }
  };
  skip_space();
  while (i < s.size()) {
    if (maxsplit >= 0 && static_cast<int64_t>(parts.size()) >= maxsplit) {
      // The rest, as it is, except trailing whitespace (Python strips only what it splits on).
      parts.emplace_back(strip(s.substr(i), strip_side::right));
      return parts;
    }
    const size_t start = i;
    while (i < s.size()) {
      size_t len = 0;
      if (is_space(decode(s, i, len))) break;
      i += len;
    }
    parts.emplace_back(s.substr(start, i - start));
    skip_space();
  }
  return parts;
}

std::vector<std::string_view> splitlines(std::string_view s) {
  std::vector<std::string_view> lines;
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    const size_t br = line_break_at(s, i);
    if (br == 0) {
      ++i;
      continue;
    }
    lines.push_back(s.substr(start, i - start));
    i += br;
    start = i;
  }
  if (start < s.size()) lines.push_back(s.substr(start));
  return lines;
}

std::string upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_upper(c);
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = to_lower(c);
  return out;
}

std::string title_method(std::string_view s) {
  std::string out(s);
  bool previous_cased = false;
  for (char& c : out) {
    if (is_cased(c)) {
      c = previous_cased ? to_lower(c) : to_upper(c);
      previous_cased = true;
    } else {
      previous_cased = false;
    }
  }
  return out;
}

std::string title_filter(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool word_start = true;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = decode(s, i, len);
    const bool separator = cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<' || is_space(cp);
    if (separator) {
      out.append(s.substr(i, len));
      word_start = true;
    } else {
      const char c = s[i];
      out += len == 1 ? (word_start ? to_upper(c) : to_lower(c)) : c;
      if (len > 1) out.append(s.substr(i + 1, len - 1));
      word_start = false;
    }
    i += len;
  }
  return out;
}

std::string capitalize(std::string_view s) {
  std::string out = lower(s);
  if (!out.empty()) out[0] = to_upper(out[0]);
  return out;
}

bool is_lower(std::string_view s) {
  bool cased = false;
  for (const char c : s) {
    if (is_ascii_upper(c)) return false;
    cased = cased || is_ascii_lower(c);
  }
  return cased;
}

bool is_upper(std::string_view s) {
  bool cased = false;
  for (const char c : s) {
    if (is_ascii_lower(c)) return false;
    cased = cased || is_ascii_upper(c);
  }
  return cased;
}

std::optional<std::string> replace(std::string_view s, std::string_view old, std::string_view repl, int64_t count,
                                   size_t max_bytes) {
  std::string out;
  int64_t done = 0;
  const auto room = [&](size_t more) { return out.size() + more <= max_bytes; };
  if (old.empty()) {
    // Python inserts `repl` before every character and at the end.
    for (size_t i = 0; i < s.size();) {
      if (count < 0 || done < count) {
        if (!room(repl.size())) return std::nullopt;
        out.append(repl);
        ++done;
      }
      size_t len = 0;
      (void)decode(s, i, len);
      if (!room(len)) return std::nullopt;
      out.append(s.substr(i, len));
      i += len;
    }
    if (count < 0 || done < count) {
      if (!room(repl.size())) return std::nullopt;
      out.append(repl);
    }
    return out;
  }
  size_t start = 0;
  while (count < 0 || done < count) {
    const size_t at = s.find(old, start);
    if (at == std::string_view::npos) break;
    if (!room(at - start + repl.size())) return std::nullopt;
    out.append(s.substr(start, at - start));
    out.append(repl);
    start = at + old.size();
    ++done;
  }
  if (!room(s.size() - start)) return std::nullopt;
  out.append(s.substr(start));
  return out;
}

slice_range slice_indices(int64_t length, std::optional<int64_t> start, std::optional<int64_t> stop, int64_t step) {
  // CPython's PySlice_Unpack + PySlice_AdjustIndices.
  step = std::max(step, -INT64_MAX);  // so that -step cannot overflow
  const auto adjust = [&](std::optional<int64_t> index, bool is_start) {
    if (!index) {
      if (step < 0) return is_start ? length - 1 : int64_t{-1};
      return is_start ? int64_t{0} : length;
    }
    int64_t i = *index;
    if (i < 0) {
      i = i < -length ? -length - 1 : i;  // avoid overflow on huge negative indices
      i += length;
      if (i < 0) i = step < 0 ? -1 : 0;
    } else if (i >= length) {
      i = step < 0 ? length - 1 : length;
    }
    return i;
  };
  slice_range r;
  r.step = step;
  r.start = adjust(start, true);
  const int64_t end = adjust(stop, false);
  if (step > 0) {
    r.count = r.start < end ? (end - r.start - 1) / step + 1 : 0;
  } else {
    r.count = end < r.start ? (r.start - end - 1) / -step + 1 : 0;
  }
  return r;
}

}  // namespace troupe::engine::chat::text
