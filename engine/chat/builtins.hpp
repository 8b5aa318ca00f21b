// The functions a template can call: the globals Hugging Face renders with (range, namespace,
// dict, raise_exception, strftime_now) and the methods of str and dict ("x".strip(), d.items()).
// str methods: capitalize, count, endswith, find, isalnum, isalpha, isdigit, islower, isspace,
// isupper, join, lower, lstrip, replace, rfind, rstrip, split, splitlines, startswith, strip, title,
// upper (not format, rsplit, partition...). dict methods: get, items, keys, values. Lists have none
// (Jinja's sandbox forbids the mutating ones anyway).
// Limits: range() and dict.items() return lists (Python: a range object, a view); only printing them
// directly differs.
#pragma once

#include <optional>
#include <string_view>

#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

// A global function, or nullptr.
[[nodiscard]] const value* find_global(std::string_view name);

// The method `name` of `self` bound to it, or nullopt when `self` has no such method.
[[nodiscard]] std::optional<value> find_method(const value& self, std::string_view name);

}  // namespace troupe::engine::chat
