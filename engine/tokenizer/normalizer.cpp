// Normalizer steps over valid UTF-8 runs. Unicode normalization forms come from utf8proc; the
// other steps are plain string rewrites.
#include "engine/tokenizer/normalizer.hpp"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "engine/tokenizer/utf8.hpp"

namespace troupe::engine {
namespace {

bool is_ascii(std::string_view s) {
  for (const char c : s) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}

// Calls `fn(run, valid)` for each maximal valid-UTF-8 run and each invalid byte, in order.
template <typename Fn>
void for_each_run(std::string_view s, Fn&& fn) {
  size_t start = 0;
  for (size_t i = 0; i < s.size();) {
    const auto seq = utf8_check(s, i);
    if (seq.status == utf8_status::valid) {
      i += seq.length;
      continue;
    }
    if (i > start) fn(s.substr(start, i - start), true);
    fn(s.substr(i, 1), false);
    start = ++i;
  }
  if (start < s.size()) fn(s.substr(start), true);
}

// One Unicode normalization form over valid UTF-8 (utf8proc; the input length is explicit, so
// NUL characters are ordinary characters).
void append_unicode_form(std::string& out, std::string_view run, int options) {
  utf8proc_uint8_t* mapped = nullptr;
  const auto n = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()),
                              static_cast<utf8proc_ssize_t>(run.size()), &mapped,
                              static_cast<utf8proc_option_t>(options));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owner(mapped, &std::free);
  if (n < 0) {
    out.append(run);  // cannot happen for valid UTF-8 short of memory exhaustion: keep the text
    return;
  }
  out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(n));
}

std::string unicode_form(std::string_view text, int options) {
  if (is_ascii(text)) return std::string(text);  // every form is the identity on ASCII
  std::string out;
  out.reserve(text.size());
  for_each_run(text, [&](std::string_view run, bool valid) {
    if (valid) {
      append_unicode_form(out, run, options);
    } else {
      out.append(run);
    }
  });
  return out;
}

std::string lowercase(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for_each_run(text, [&](std::string_view run, bool valid) {
    if (!valid) {
      out.append(run);
      return;
    }
    for (size_t i = 0; i < run.size();) {
      const auto seq = utf8_check(run, i);
      const char32_t cp = utf8_decode(run, i, seq.length);
      utf8_append(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
      i += seq.length;
    }
  });
  return out;
}

std::string replace_all(std::string_view text, std::string_view from, std::string_view to) {
  if (from.empty()) return std::string(text);
  std::string out;
  out.reserve(text.size() + text.size() / 8);
  size_t pos = 0;
  for (size_t hit = text.find(from); hit != std::string_view::npos; hit = text.find(from, pos)) {
    out.append(text.substr(pos, hit - pos));
    out.append(to);
    pos = hit + from.size();
  }
  out.append(text.substr(pos));
  return out;
}

}  // namespace

std::string normalizer::apply(std::string_view text) const {
  std::string s(text);
  for (const auto& step : steps_) {
    switch (step.what) {
      case normalizer_step::kind::nfc:
        s = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE);
        break;
      case normalizer_step::kind::nfd:
        s = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE);
        break;
      case normalizer_step::kind::nfkc:
        s = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT);
        break;
      case normalizer_step::kind::nfkd:
        s = unicode_form(s, UTF8PROC_STABLE | UTF8PROC_DECOMPOSE | UTF8PROC_COMPAT);
        break;
      case normalizer_step::kind::lowercase:
        s = lowercase(s);
        break;
      case normalizer_step::kind::prepend:
        // Hugging Face prepends only to non-empty text.
        if (!s.empty()) s.insert(0, step.text);
        break;
      case normalizer_step::kind::replace:
        s = replace_all(s, step.text, step.content);
        break;
      case normalizer_step::kind::strip: {
        const size_t lead = step.left ? leading_space_length(s) : 0;
        const size_t trail = step.right && lead < s.size() ? trailing_space_length(s) : 0;
        s = s.substr(lead, s.size() - lead - std::min(trail, s.size() - lead));
        break;
      }
    }
  }
  return s;
}

}  // namespace troupe::engine
