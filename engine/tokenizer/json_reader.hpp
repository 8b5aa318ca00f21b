// Typed, path-naming access to an untrusted JSON file (simdjson DOM): every error starts with the
// file's path and names the key that was missing or of the wrong type. Used by the tokenizer.json
// and tokenizer_config.json readers.
#pragma once

#include <simdjson.h>

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace troupe::engine {

namespace dom = simdjson::dom;

inline const char* type_name(dom::element_type t) {
  switch (t) {
    case dom::element_type::ARRAY:
      return "array";
    case dom::element_type::OBJECT:
      return "object";
    case dom::element_type::INT64:
    case dom::element_type::UINT64:
      return "integer";
    case dom::element_type::DOUBLE:
      return "number";
    case dom::element_type::STRING:
      return "string";
    case dom::element_type::BOOL:
      return "boolean";
    case dom::element_type::NULL_VALUE:
      return "null";
  }
  return "value";
}

// Typed access to one JSON file; every error starts with the file's path and names the key.
class json_reader {
 public:
  explicit json_reader(std::string path) : path_(std::move(path)) {}

  expected<dom::element> load() {
    std::error_code ec;
    if (!std::filesystem::is_regular_file(path_, ec)) return fail(path_ + ": no such file");
    if (auto e = simdjson::padded_string::load(path_).get(text_)) {
      return fail(path_ + ": cannot read: " + simdjson::error_message(e));
    }
    return parse();
  }

  // Parses `text` as if it had been read from the file (messages still name path()).
  expected<dom::element> load_text(std::string_view text) {
    text_ = simdjson::padded_string(text);
    return parse();
  }

  error bad(const std::string& key, const std::string& what) const {
    return fail(path_ + ": " + key + ": " + what);
  }
  error wrong_type(const std::string& key, dom::element e, const char* want) const {
    return bad(key, std::string("expected ") + want + ", found " + type_name(e.type()));
  }

  static std::optional<dom::element> member(dom::object o, std::string_view k) {
    dom::element e;
    if (o.at_key(k).get(e)) return std::nullopt;
    return e;
  }
  // A member that is absent or null reads as nullopt.
  static std::optional<dom::element> present(dom::object o, std::string_view k) {
    auto e = member(o, k);
    if (e && e->is_null()) return std::nullopt;
    return e;
  }

  expected<dom::object> object(dom::element e, const std::string& key) const {
    dom::object o;
    if (e.get_object().get(o)) return wrong_type(key, e, "an object");
    return o;
  }
  expected<dom::array> array(dom::element e, const std::string& key) const {
    dom::array a;
    if (e.get_array().get(a)) return wrong_type(key, e, "an array");
    return a;
  }
  expected<std::string> string(dom::element e, const std::string& key) const {
    std::string_view s;
    if (e.get_string().get(s)) return wrong_type(key, e, "a string");
    return std::string(s);
  }
  expected<bool> boolean(dom::element e, const std::string& key) const {
    bool b = false;
    if (e.get_bool().get(b)) return wrong_type(key, e, "a boolean");
    return b;
  }
  expected<int64_t> integer(dom::element e, const std::string& key) const {
    int64_t v = 0;
    if (e.get_int64().get(v)) return wrong_type(key, e, "an integer");
    return v;
  }
  // An optional boolean member with a default.
  expected<bool> flag(dom::object o, std::string_view k, const std::string& key, bool dflt) const {
    const auto e = present(o, k);
    if (!e) return dflt;
    return boolean(*e, key);
  }
  // The "type" string of a tagged object.
  expected<std::string> tag(dom::object o, const std::string& key) const {
    const auto e = member(o, "type");
    if (!e) return bad(key, "has no \"type\"");
    return string(*e, key + ".type");
  }

  const std::string& path() const { return path_; }

 private:
  expected<dom::element> parse() {
    dom::element root;
    if (auto e = parser_.parse(text_).get(root)) {
      return fail(path_ + ": malformed JSON: " + simdjson::error_message(e));
    }
    return root;
  }

  std::string path_;
  simdjson::padded_string text_;
  dom::parser parser_;
};

#define TRY_ASSIGN(var, expr)                   \
  auto var##_result = (expr);                   \
  if (!var##_result) return var##_result.err(); \
  auto var = std::move(*var##_result)

#define TRY(expr)                               \
  do {                                          \
    auto try_result_ = (expr);                  \
    if (!try_result_) return try_result_.err(); \
  } while (0)

}  // namespace troupe::engine
