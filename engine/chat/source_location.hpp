// Where something is in a template's source, and errors that say so: every parse and render error
// reads "chat template: line L, column C: what went wrong".
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace troupe::engine::chat {

struct source_location {
  uint32_t line = 1;
  uint32_t column = 1;  // in characters, from 1
};

// 'text', for error messages.
[[nodiscard]] inline std::string quoted(std::string_view text) {
  std::string q;
  q.reserve(text.size() + 2);
  q += '\'';
  q += text;
  q += '\'';
  return q;
}

inline constexpr std::string_view error_prefix = "chat template: ";

// "chat template: line L, column C: message". A message that already carries the prefix (an error
// raised deeper, e.g. inside a macro) is kept as it is, so an error names the innermost place.
[[nodiscard]] inline error located(source_location loc, std::string_view message) {
  if (message.substr(0, error_prefix.size()) == error_prefix) return error{std::string(message)};
  return error{std::string(error_prefix) + "line " + std::to_string(loc.line) + ", column " +
               std::to_string(loc.column) + ": " + std::string(message)};
}

}  // namespace troupe::engine::chat
