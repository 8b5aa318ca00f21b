// Python's str() and repr() of values (see printing.hpp).
#include "engine/chat/printing.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "engine/chat/callable.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

// Python's str.isprintable for the characters text commonly holds: control characters, the
// separators other than ' ' (Zs, Zl, Zp) and the usual format characters (Cf) are not printable.
bool printable(char32_t cp) {
  return !(cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x2064) || cp == 0x3000 || cp == 0xFEFF ||
           (cp >= 0xFFF9 && cp <= 0xFFFB));
}

}  // namespace

void append_float(std::string& out, double d) {
  if (std::isnan(d)) {
    out += "nan";
    return;
  }
  if (std::isinf(d)) {
    out += d < 0 ? "-inf" : "inf";
    return;
  }
  // The shortest round-trip digits, as d.ddde±x; Python writes them in positional notation when
  // the decimal exponent is in [-4, 16), in scientific notation otherwise.
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<size_t>(res.ptr - buf));
  const bool negative = sci.front() == '-';
  if (negative) sci.remove_prefix(1);
  const size_t e = sci.find('e');
  std::string digits;
  for (const char c : sci.substr(0, e)) {
    if (c != '.') digits += c;
  }
  int exponent = 0;
  std::from_chars(sci.data() + e + (sci[e + 1] == '+' ? 2 : 1), sci.data() + sci.size(), exponent);
  if (negative) out += '-';
  if (exponent >= -4 && exponent < 16) {
    if (exponent < 0) {
      out += "0.";
      out.append(static_cast<size_t>(-exponent - 1), '0');
      out += digits;
    } else if (static_cast<size_t>(exponent) + 1 >= digits.size()) {
      out += digits;
      out.append(static_cast<size_t>(exponent) + 1 - digits.size(), '0');
      out += ".0";
    } else {
      out.append(digits, 0, static_cast<size_t>(exponent) + 1);
      out += '.';
      out.append(digits, static_cast<size_t>(exponent) + 1);
    }
    return;
  }
  out += digits[0];
  if (digits.size() > 1) {
    out += '.';
    out.append(digits, 1);
  }
  char exp_buf[16];
  std::snprintf(exp_buf, sizeof exp_buf, "e%c%02d", exponent < 0 ? '-' : '+', std::abs(exponent));
  out += exp_buf;
}

void append_string_repr(std::string& out, std::string_view s) {
  const bool has_single = s.find('\'') != std::string_view::npos;
  const bool has_double = s.find('"') != std::string_view::npos;
  const char quote = has_single && !has_double ? '"' : '\'';
  out += quote;
  for (size_t i = 0; i < s.size();) {
    size_t len = 0;
    const char32_t cp = text::decode(s, i, len);
    const char c = s[i];
    if (c == quote || c == '\\') {
      out += '\\';
      out += c;
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\r') {
      out += "\\r";
    } else if (c == '\t') {
      out += "\\t";
    } else if (!printable(cp)) {
      char buf[16];
      const auto u = static_cast<unsigned>(cp);
      std::snprintf(buf, sizeof buf, u < 0x100 ? "\\x%02x" : u < 0x10000 ? "\\u%04x" : "\\U%08x", u);
      out += buf;
    } else {
      out.append(s.substr(i, len));
    }
    i += len;
  }
  out += quote;
}

void append_repr(std::string& out, const value& v) {
  switch (v.type()) {
    case value::kind::undefined: out += "Undefined"; return;
    case value::kind::string: append_string_repr(out, v.as_string()); return;
    case value::kind::array: {
      const array& a = v.as_array();
      out += a.tuple ? '(' : '[';
      for (size_t i = 0; i < a.items.size(); ++i) {
        if (i > 0) out += ", ";
        append_repr(out, a.items[i]);
      }
      if (a.tuple && a.items.size() == 1) out += ',';
      out += a.tuple ? ')' : ']';
      return;
    }
    case value::kind::object: {
      if (v.is_namespace()) {
        out += "<Namespace>";
        return;
      }
      out += '{';
      bool first = true;
      for (const auto& [k, item] : v.as_object().items()) {
        if (!first) out += ", ";
        first = false;
        append_string_repr(out, k);
        out += ": ";
        append_repr(out, item);
      }
      out += '}';
      return;
    }
    default: append_str(out, v); return;
  }
}

void append_str(std::string& out, const value& v) {
  switch (v.type()) {
    case value::kind::undefined: return;
    case value::kind::none: out += "None"; return;
    case value::kind::boolean: out += v.as_bool() ? "True" : "False"; return;
    case value::kind::integer: out += std::to_string(v.as_int()); return;
    case value::kind::floating: append_float(out, v.as_double()); return;
    case value::kind::string: out += v.as_string(); return;
    case value::kind::function:
      out += "<function ";
      out += v.as_function().name();
      out += '>';
      return;
    default: append_repr(out, v); return;
  }
}

std::string to_str(const value& v) {
  std::string out;
  append_str(out, v);
  return out;
}

}  // namespace troupe::engine::chat
