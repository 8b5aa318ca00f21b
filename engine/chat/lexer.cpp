// Tokenizer for the Jinja subset (see lexer.hpp). It follows Jinja's own lexer rule for rule:
// data runs to the first "{{", "{%" or "{#"; inside a tag, end markers only count while brackets
// are balanced (so `{{ {'a': {'b': 1}} }}` works); numbers, names, strings and operators as in
// Jinja; string escapes as Python's.
#include "engine/chat/lexer.hpp"

#include <array>
#include <charconv>
#include <cstring>
#include <optional>

#include "common/utf8.hpp"
#include "engine/chat/text.hpp"

namespace troupe::engine::chat {
namespace {

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_name_start(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool is_name_char(char c) { return is_name_start(c) || is_digit(c); }
bool is_tag_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
int hex_value(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Longest first, so that "//" wins over "/".
constexpr std::array<std::string_view, 25> operators = {
    "//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(",
    ")",  "{",  "}",  ">",  "<",  "=",  ".", ":", "|", ","};

// Newlines become \n; one trailing newline goes (Jinja's keep_trailing_newline=False).
std::string normalize_newlines(std::string_view source) {
  std::string out;
  out.reserve(source.size());
  for (size_t i = 0; i < source.size(); ++i) {
    if (source[i] == '\r') {
      out += '\n';
      if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
    } else {
      out += source[i];
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

class lexer {
 public:
  explicit lexer(std::string src) : src_(std::move(src)) {}

  expected<std::vector<token>> run() {
    while (pos_ < src_.size()) {
      const size_t tag = find_tag(pos_);
      std::string_view data(src_.data() + pos_, tag - pos_);
      if (tag == src_.size()) {
        push_text(data, pos_);
        break;
      }
      const char kind = src_[tag + 1];
      const char sign = tag + 2 < src_.size() && (src_[tag + 2] == '-' || src_[tag + 2] == '+') ? src_[tag + 2] : 0;
      const std::optional<size_t> raw_body = kind == '%' ? raw_begin_end(tag) : std::nullopt;
      push_text(control_before(data, sign, kind != '{'), pos_);
      expected<void> r;
      if (kind == '#') {
        r = comment(tag, sign);
      } else if (raw_body) {
        r = raw(tag, *raw_body);
      } else {
        r = tag_tokens(tag, kind == '{', sign);
      }
      if (!r) return r.err();
    }
    token end;
    end.kind = token_kind::end;
    end.loc = location(src_.size());
    tokens_.push_back(std::move(end));
    return std::move(tokens_);
  }

 private:
  // The first "{{", "{%" or "{#" at or after `from`, or src_.size().
  size_t find_tag(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#')) return i;
    }
    return src_.size();
  }

  // Line and column of byte `pos`: counted on from the last position asked for (tokens come in
  // order), or from the start again (an error about an earlier tag).
  source_location location(size_t pos) {
    if (pos < counted_) {
      counted_ = 0;
      line_ = 1;
      column_ = 1;
    }
    for (; counted_ < pos && counted_ < src_.size(); ++counted_) {
      const auto c = static_cast<unsigned char>(src_[counted_]);
      if (c == '\n') {
        ++line_;
        column_ = 1;
      } else if ((c & 0xC0) != 0x80) {
        ++column_;
      }
    }
    return {line_, column_};
  }

  error fail_at(size_t pos, std::string message) { return located(location(pos), message); }

  // Whitespace control on the text before a tag: `-` strips all trailing whitespace; otherwise
  // lstrip_blocks removes spaces and tabs between the start of the line and a block or comment tag.
  std::string_view control_before(std::string_view data, char sign, bool block_or_comment) const {
    if (sign == '-') return text::strip(data, text::strip_side::right);
    if (sign == '+' || !block_or_comment) return data;
    const size_t line_start = data.rfind('\n') == std::string_view::npos ? 0 : data.rfind('\n') + 1;
    if (line_start == 0 && !line_starting_) return data;
    if (data.find_first_not_of(" \t", line_start) != std::string_view::npos) return data;
    return data.substr(0, line_start);
  }

  void push_text(std::string_view data, size_t pos) {
    if (data.empty()) return;
    token t;
    t.kind = token_kind::text;
    t.text = std::string(data);
    t.loc = location(pos);
    tokens_.push_back(std::move(t));
  }

  void push(token_kind kind, std::string text, size_t pos) {
    token t;
    t.kind = kind;
    t.text = std::move(text);
    t.loc = location(pos);
    tokens_.push_back(std::move(t));
  }

  size_t skip_python_space(size_t p) const {
    while (p < src_.size()) {
      size_t len = 0;
      if (!text::is_space(text::decode(src_, p, len))) break;
      p += len;
    }
    return p;
  }

  // After a tag's closing marker at `p` (just past it): `-` strips the whitespace that follows,
  // `+` keeps it, otherwise trim_blocks removes one newline (`trims` is false for `}}`).
  void close_tag(size_t p, char sign, bool trims) {
    if (sign == '-') {
      p = skip_python_space(p);
    } else if (sign != '+' && trims && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    line_starting_ = p > 0 && src_[p - 1] == '\n';
    pos_ = p;
  }

  expected<void> comment(size_t tag, char sign) {
    const size_t body = tag + 2 + (sign != 0 ? 1 : 0);
    const size_t end = src_.find("#}", body);
    if (end == std::string::npos) return fail_at(tag, "unclosed comment: '{#' has no matching '#}'");
    const char end_sign = end > body && (src_[end - 1] == '-' || src_[end - 1] == '+') ? src_[end - 1] : 0;
    close_tag(end + 2, end_sign, true);
    return {};
  }

  // If the block tag at `tag` is {% raw %}, where its body starts.
  std::optional<size_t> raw_begin_end(size_t tag) const {
    size_t p = tag + 2;
    if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) ++p;
    while (p < src_.size() && is_tag_space(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0 || (p + 3 < src_.size() && is_name_char(src_[p + 3]))) return std::nullopt;
    p += 3;
    while (p < src_.size() && is_tag_space(src_[p])) ++p;
    if (src_.compare(p, 3, "-%}") == 0) return skip_python_space(p + 3);
    if (src_.compare(p, 2, "%}") == 0) return p + 2;  // no trim_blocks after {% raw %}, as in Jinja
    return std::nullopt;
  }

  expected<void> raw(size_t tag, size_t body) {
    // The first {% endraw %} (any whitespace control) ends the body.
    for (size_t at = src_.find("{%", body); at != std::string::npos; at = src_.find("{%", at + 2)) {
      size_t p = at + 2;
      const char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p] : 0;
      if (sign != 0) ++p;
      while (p < src_.size() && is_tag_space(src_[p])) ++p;
      if (src_.compare(p, 6, "endraw") != 0) continue;
      p += 6;
      while (p < src_.size() && is_tag_space(src_[p])) ++p;
      char end_sign = 0;
      if (src_.compare(p, 3, "-%}") == 0 || src_.compare(p, 3, "+%}") == 0) {
        end_sign = src_[p];
        ++p;
      } else if (src_.compare(p, 2, "%}") != 0) {
        continue;
      }
      line_starting_ = body > 0 && src_[body - 1] == '\n';
      push_text(control_before(std::string_view(src_).substr(body, at - body), sign, true), body);
      close_tag(p + 2, end_sign, true);
      return {};
    }
    return fail_at(tag, "unclosed raw block: '{% raw %}' has no matching '{% endraw %}'");
  }

  // The tokens of {{ ... }} (print) or {% ... %}, through the closing marker.
  expected<void> tag_tokens(size_t tag, bool print, char sign) {
    push(print ? token_kind::print_begin : token_kind::block_begin, print ? "{{" : "{%", tag);
    size_t p = tag + 2 + (sign != 0 ? 1 : 0);
    std::string brackets;  // expected closers of the open brackets
    while (true) {
      while (p < src_.size() && is_tag_space(src_[p])) ++p;
      if (p >= src_.size()) {
        return fail_at(tag, std::string("unexpected end of template: '") + (print ? "{{" : "{%") +
                                "' is never closed");
      }
      if (brackets.empty()) {
        const std::string_view close = print ? "}}" : "%}";
        char end_sign = 0;
        size_t marker = p;
        if ((src_[p] == '-' || (src_[p] == '+' && !print)) && src_.compare(p + 1, 2, close) == 0) {
          end_sign = src_[p];
          marker = p + 1;
        }
        if (src_.compare(marker, 2, close) == 0) {
          push(print ? token_kind::print_end : token_kind::block_end, std::string(close), p);
          close_tag(marker + 2, end_sign, !print);
          return {};
        }
      }
      const char c = src_[p];
      if (is_digit(c)) {
        auto r = number(p);
        if (!r) return r.err();
        p = *r;
      } else if (is_name_start(c)) {
        size_t e = p;
        while (e < src_.size() && is_name_char(src_[e])) ++e;
        push(token_kind::name, src_.substr(p, e - p), p);
        p = e;
      } else if (c == '\'' || c == '"') {
        auto r = string_literal(p);
        if (!r) return r.err();
        p = *r;
      } else {
        std::string_view op;
        for (const std::string_view candidate : operators) {
          if (src_.compare(p, candidate.size(), candidate) == 0) {
            op = candidate;
            break;
          }
        }
        if (op.empty()) {
          size_t len = 0;
          (void)text::decode(src_, p, len);
          return fail_at(p, "unexpected character '" + src_.substr(p, len) + "'");
        }
        if (op == "(" || op == "[" || op == "{") {
          brackets += op == "(" ? ')' : op == "[" ? ']' : '}';
        } else if (op == ")" || op == "]" || op == "}") {
          if (brackets.empty() || brackets.back() != op[0]) return fail_at(p, "unexpected '" + std::string(op) + "'");
          brackets.pop_back();
        }
        push(token_kind::op, std::string(op), p);
        p += op.size();
      }
    }
  }

  // Digits with single underscores between them (Jinja's (\d+_)*\d+), from `p`; returns the end.
  size_t digits(size_t p) const {
    while (p < src_.size() && is_digit(src_[p])) {
      ++p;
      if (p + 1 < src_.size() && src_[p] == '_' && is_digit(src_[p + 1])) ++p;
    }
    return p;
  }

  expected<size_t> number(size_t p) {
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    // Float: digits, then .digits and/or an exponent (not right after a '.', so that x.0.1 is
    // x[0][1]).
    size_t e = digits(p);
    bool is_float = false;
    if (!after_dot) {
      if (e + 1 < src_.size() && src_[e] == '.' && is_digit(src_[e + 1])) {
        e = digits(e + 1);
        is_float = true;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t x = e + 1;
        if (x < src_.size() && (src_[x] == '+' || src_[x] == '-')) ++x;
        if (x < src_.size() && is_digit(src_[x])) {
          e = digits(x);
          is_float = true;
        }
      }
    }
    if (is_float) {
      std::string clean;
      for (size_t i = p; i < e; ++i) {
        if (src_[i] != '_') clean += src_[i];
      }
      token t;
      t.kind = token_kind::floating;
      std::from_chars(clean.data(), clean.data() + clean.size(), t.floating);
      t.text = src_.substr(p, e - p);
      t.loc = location(p);
      tokens_.push_back(std::move(t));
      return e;
    }
    // Integer: 0x / 0o / 0b prefixes, "0" (or "0_0"...), or a decimal without leading zeros.
    int base = 10;
    size_t d = p;
    if (src_[p] == '0' && p + 2 < src_.size()) {
      const char x = static_cast<char>(src_[p + 1] | 0x20);
      const int prefixed = x == 'x' ? 16 : x == 'o' ? 8 : x == 'b' ? 2 : 0;
      const size_t first = p + 2 + (src_[p + 2] == '_' ? 1 : 0);
      if (prefixed != 0 && first < src_.size() && hex_value(src_[first]) >= 0 && hex_value(src_[first]) < prefixed) {
        base = prefixed;
        d = p + 2;
      }
    }
    e = d;
    uint64_t v = 0;
    bool overflow = false;
    if (base == 10 && src_[p] == '0') {
      e = p + 1;
      while (e + 1 < src_.size() && src_[e] == '_' && src_[e + 1] == '0') e += 2;
      while (e < src_.size() && src_[e] == '0') ++e;
    } else {
      while (e < src_.size()) {
        const size_t at = src_[e] == '_' && e + 1 < src_.size() ? e + 1 : e;
        const int h = hex_value(src_[at]);
        if (h < 0 || h >= base) break;
        overflow = overflow || v > (static_cast<uint64_t>(INT64_MAX) - static_cast<uint64_t>(h)) / base;
        v = v * base + static_cast<uint64_t>(h);
        e = at + 1;
      }
    }
    if (overflow) return fail_at(p, "integer literal too large: " + src_.substr(p, e - p));
    token t;
    t.kind = token_kind::integer;
    t.integer = static_cast<int64_t>(v);
    t.text = src_.substr(p, e - p);
    t.loc = location(p);
    tokens_.push_back(std::move(t));
    return e;
  }

  // A quoted string from `p`, decoded with Python's escapes; returns the end.
  expected<size_t> string_literal(size_t p) {
    const char quote = src_[p];
    std::string out;
    size_t i = p + 1;
    while (true) {
      if (i >= src_.size()) return fail_at(p, "unterminated string literal");
      const char c = src_[i];
      if (c == quote) break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) return fail_at(p, "unterminated string literal");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case '\n': break;  // line continuation
        case '\\': out += '\\'; break;
        case '\'': out += '\''; break;
        case '"': out += '"'; break;
        case 'a': out += '\a'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'v': out += '\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          const size_t n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (size_t k = 0; k < n; ++k) {
            const int h = i + k < src_.size() ? hex_value(src_[i + k]) : -1;
            if (h < 0) return fail_at(i - 2, std::string("truncated \\") + e + " escape in string literal");
            cp = cp * 16 + static_cast<char32_t>(h);
          }
          if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
            return fail_at(i - 2, "escape is not a Unicode scalar value in string literal");
          }
          utf8_append(out, cp);
          i += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i < src_.size() && src_[i] >= '0' && src_[i] <= '7'; ++k, ++i) {
              cp = cp * 8 + static_cast<char32_t>(src_[i] - '0');
            }
            utf8_append(out, cp);
          } else if (e == 'N') {
            return fail_at(i - 2, "\\N{...} escapes are not supported");
          } else {
            out += '\\';  // Python keeps unknown escapes as written
            out += e;
          }
      }
    }
    token t;
    t.kind = token_kind::string;
    t.text = std::move(out);
    t.loc = location(p);
    tokens_.push_back(std::move(t));
    return i + 1;
  }

  std::string src_;
  size_t pos_ = 0;
  bool line_starting_ = true;  // the text before the next tag begins a line
  std::vector<token> tokens_;
  size_t counted_ = 0;  // location(): bytes counted into line_ / column_
  uint32_t line_ = 1;
  uint32_t column_ = 1;
};

}  // namespace

expected<std::vector<token>> tokenize(std::string_view source) {
  if (source.size() > max_template_bytes) {
    return fail(std::string(error_prefix) + "template is larger than " + std::to_string(max_template_bytes >> 20) +
                " MiB");
  }
  return lexer(normalize_newlines(source)).run();
}

}  // namespace troupe::engine::chat
