// Writing JSON strings: simdjson only parses, so the trainer escapes its own output here.
#pragma once

#include <string>
#include <string_view>

namespace troupe::engine {

// Appends `s` (valid UTF-8) as a quoted JSON string: quote, backslash and control characters
// escaped, everything else (including non-ASCII) written as is.
void append_json_string(std::string& out, std::string_view s);

}  // namespace troupe::engine
