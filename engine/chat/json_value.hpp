// JSON in and out: from_json (declared in value.hpp) reads a request's messages and tools with
// simdjson; to_json is the tojson filter, printing like Python's json.dumps as Hugging Face calls it
// (ensure_ascii=False, separators ", " and ": ", or "," and ": " with an indent; floats as repr).
#pragma once

#include <optional>
#include <string>

#include "common/expected.hpp"
#include "engine/chat/value.hpp"

namespace troupe::engine::chat {

// json.dumps's options, as transformers' tojson filter passes them.
struct json_options {
  std::optional<std::string> indent;  // nullopt: one line; otherwise a newline and this per level
  bool ensure_ascii = false;          // escape non-ASCII as \uXXXX (surrogate pairs above U+FFFF)
  bool sort_keys = false;
  std::string item_separator = ", ";  // "," when an indent is given (json.dumps's default)
  std::string key_separator = ": ";
};

// Undefined, namespaces and callables are errors (json.dumps: "not JSON serializable"); NaN and
// infinities print as NaN / Infinity / -Infinity, as json.dumps does.
[[nodiscard]] expected<std::string> to_json(const value& v, const json_options& options);

}  // namespace troupe::engine::chat
