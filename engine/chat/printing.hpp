// Values as text, the way Python prints them: what `{{ x }}`, `~`, `|string` and `|join` produce.
// Jinja renders str(x): True / False / None, floats as repr (0.1, 1e+16, 2.0), lists and dicts in
// Python's repr (['a', 1], {'k': None}, ('t',)). Undefined prints as nothing.
// Limits: a string's repr escapes control characters, separators other than ' ' and the common
// format characters (U+200B...) as Python does; rarer characters Python deems non-printable (e.g.
// unassigned code points) are kept as they are.
#pragma once

#include <string>
#include <string_view>

#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

// Python's str(v); undefined gives "".
[[nodiscard]] std::string to_str(const value& v);
void append_str(std::string& out, const value& v);
// Python's repr(v).
void append_repr(std::string& out, const value& v);
// Python's repr of a float: the shortest text that reads back as the same double ("0.1", "2.0",
// "1e+16", "1e-05", "inf", "nan").
void append_float(std::string& out, double d);
// Python's repr of a str: quoted with ' (or " when the text has ' but no "), escaped.
void append_string_repr(std::string& out, std::string_view s);

}  // namespace troupe::engine::chat
