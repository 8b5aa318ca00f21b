// Python's operators on values, as Jinja evaluates them: arithmetic (+ - * / // % **), ~, the
// comparisons and `in`. Errors read like Python's TypeError / ZeroDivisionError messages.
// Limits: integers are 64-bit (Python's are unbounded): overflow is an error, not a wrong number.
#pragma once

#include "common/expected.hpp"
#include "engine/chat/ast.hpp"
#include "engine/chat/callable.hpp"

namespace troupe::engine::chat {

// An arithmetic operator or ~ (not and / or, which the evaluator short-circuits). Operands must not
// be undefined, except for ~ (which prints undefined as "").
[[nodiscard]] expected<value> apply_binary(render_state& state, binary_op op, const value& a, const value& b);

// Comparisons and `in` charge `state` for the values they visit (large lists compared in a loop
// must not run unbounded).

// One comparison of a chain; ordering comparisons of incomparable types are errors.
[[nodiscard]] expected<bool> compare(render_state& state, compare_op op, const value& a, const value& b);

// Python's `item in container`.
[[nodiscard]] expected<bool> contains(render_state& state, const value& container, const value& item);

// Orders two values for sort, dictsort, min and max: -1, 0 or 1. Strings compare by code point,
// ignoring ASCII case unless `case_sensitive`; numbers by value; lists element by element.
[[nodiscard]] expected<int> order(render_state& state, const value& a, const value& b, bool case_sensitive);

}  // namespace troupe::engine::chat
