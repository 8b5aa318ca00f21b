// Small helpers shared by the checkpoint readers and writers: overflow-checked size arithmetic and
// names from untrusted files made safe to print inside a one-line error message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace troupe::engine::detail {

// a * b, or nullopt when the product does not fit in 64 bits.
[[nodiscard]] inline std::optional<uint64_t> checked_mul(uint64_t a, uint64_t b) {
  uint64_t r;
  if (__builtin_mul_overflow(a, b, &r)) return std::nullopt;
  return r;
}

// Product of the dimensions, or nullopt when a dimension is negative or the product of the non-zero
// dimensions exceeds INT64_MAX: tensor_view::numel multiplies in int64 in any order, so a zero
// dimension must not excuse huge others (that would overflow before the zero is reached).
[[nodiscard]] inline std::optional<uint64_t> checked_numel(std::span<const int64_t> shape) {
  uint64_t n = 1;
  bool has_zero = false;
  for (int64_t d : shape) {
    if (d < 0) return std::nullopt;
    if (d == 0) {
      has_zero = true;
      continue;
    }
    auto p = checked_mul(n, uint64_t(d));
    if (!p || *p > uint64_t(INT64_MAX)) return std::nullopt;
    n = *p;
  }
  return has_zero ? 0 : n;
}

// 'name' in single quotes; control bytes become \xNN and very long names are cut, so that a
// hostile name cannot forge extra lines or flood a log.
[[nodiscard]] inline std::string quote_name(std::string_view s) {
  constexpr size_t max_shown = 200;
  static constexpr char hex[] = "0123456789abcdef";
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < max_shown; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += char(c);
    }
  }
  if (s.size() > max_shown) out += "...";
  out += "'";
  return out;
}

// "[10, 20]" for error messages.
template <class Range>
[[nodiscard]] std::string format_list(const Range& values) {
  std::string out = "[";
  bool first = true;
  for (const auto& v : values) {
    if (!first) out += ", ";
    first = false;
    out += std::to_string(v);
  }
  return out + "]";
}

}  // namespace troupe::engine::detail
