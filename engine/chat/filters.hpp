// Jinja's filters (`x | name(args)`), as Python Jinja computes them with Hugging Face's settings:
// tojson is transformers' own (json.dumps with ensure_ascii=False), no autoescaping.
// Supported: abs, capitalize, count, d, default, dictsort, e, escape, first, float, indent, int,
// items, join, last, length, list, lower, map, max, min, reject, rejectattr, replace, reverse,
// round, safe, select, selectattr, sort, string, sum, title, tojson, trim, unique, upper.
// Filters that return generators in Jinja (map, select, reverse of a list...) return lists here;
// only printing them directly (which shows "<generator object ...>" in Jinja) differs.
#pragma once

#include <string_view>

#include "engine/chat/ast.hpp"

namespace troupe::engine::chat {

// nullptr when there is no filter of that name.
[[nodiscard]] filter_fn find_filter(std::string_view name);

}  // namespace troupe::engine::chat
