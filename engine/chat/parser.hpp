// The second pass: tokens to a syntax tree, with Jinja's grammar and operator precedence (lowest
// first): `x if c else y`, or, and, not, comparisons (chained, with in / not in), + and -, ~,
// * / // %, ** (left-associative, as in Jinja), unary - and +, then postfix . [] () and filters
// and tests. Unknown filters, tests and tags are parse errors naming themselves and their place.
// Limits: nesting (brackets, expressions, blocks) deeper than max_parse_depth is an error, so a
// hostile template cannot exhaust the stack.
#pragma once

#include <string_view>

#include "common/expected.hpp"
#include "engine/chat/ast.hpp"

namespace troupe::engine::chat {

inline constexpr int max_parse_depth = 128;

[[nodiscard]] expected<body> parse_template(std::string_view source);

}  // namespace troupe::engine::chat
