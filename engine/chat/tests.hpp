// Jinja's tests (`x is name`, `x is name(arg)`, `x is name arg`), with Python's semantics: e.g.
// `is number` holds for booleans, `is iterable` and `is sequence` hold for undefined and strings.
// Supported: boolean, callable, defined, divisibleby, eq, equalto, ==, escaped, even, false, float,
// ge, >=, greaterthan, gt, >, in, integer, iterable, le, <=, lessthan, lt, <, lower, mapping, ne,
// !=, none, number, odd, sameas, sequence, string, true, undefined, upper.
#pragma once

#include <string_view>

#include "engine/chat/ast.hpp"

namespace troupe::engine::chat {

// nullptr when there is no test of that name.
[[nodiscard]] test_fn find_test(std::string_view name);

}  // namespace troupe::engine::chat
