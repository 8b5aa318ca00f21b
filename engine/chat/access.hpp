// Reading into values the way Jinja does: x.name tries the attribute (a str or dict method) before
// the key, x[key] the key before the attribute; what is missing is undefined. Also Python's
// slicing and iteration (list(x)).
#pragma once

#include <string_view>

#include "common/expected.hpp"
#include "engine/chat/callable.hpp"

namespace troupe::engine::chat {

// `obj` must not be undefined: reading into undefined is an error the evaluator reports itself.
[[nodiscard]] value get_attribute(const value& obj, std::string_view name);
[[nodiscard]] value get_item(const value& obj, const value& key);

// obj[start:stop:step] of a list, tuple or str (parts may be undefined or none: absent); of other
// values, undefined (as Jinja's getitem gives).
[[nodiscard]] expected<value> get_slice(render_state& state, const value& obj, const value& start, const value& stop,
                                        const value& step);

// Python's list(v), as a list value: a list or tuple itself, a string's characters, a dict's keys;
// undefined iterates as empty. Other values are not iterable (an error).
[[nodiscard]] expected<value> to_list(const value& v);

}  // namespace troupe::engine::chat
