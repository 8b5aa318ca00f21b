// The values a chat template computes with: Jinja's undefined, Python's None, bool, int, float and
// str, lists (and tuples), dicts (insertion-ordered, like Python's) and callables.
//
// Strings, lists and dicts are shared, never copied: a value is a small handle, so binding a loop
// variable or passing an argument costs the same for a 1 MiB message as for a word. Shared data is
// immutable once built, except namespace() objects, which `{% set ns.attr = ... %}` updates; a
// namespace is never traversed by printing, tojson or ==, so no value can reach itself.
//
// Thread-safety: a value that no render is mutating (every value a caller builds, e.g. with
// from_json) may be read by any number of renders at once; namespaces only exist inside one render.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "common/expected.hpp"

namespace troupe::engine::chat {

class value;
struct array;
class object;
class callable;

using array_ptr = std::shared_ptr<const array>;
using object_ptr = std::shared_ptr<object>;
using callable_ptr = std::shared_ptr<const callable>;

class value {
 public:
  enum class kind : uint8_t { undefined, none, boolean, integer, floating, string, array, object, function };

  value() = default;  // undefined
  [[nodiscard]] static value none() { return value(std::nullptr_t{}); }
  [[nodiscard]] static value boolean(bool b) { return value(b); }
  [[nodiscard]] static value integer(int64_t i) { return value(i); }
  [[nodiscard]] static value number(double d) { return value(d); }
  [[nodiscard]] static value string(std::string s) { return value(std::move(s)); }
  [[nodiscard]] static value list(std::vector<value> items, bool tuple = false);
  [[nodiscard]] static value dict(object_ptr o);
  [[nodiscard]] static value function(callable_ptr f);

  [[nodiscard]] kind type() const { return static_cast<kind>(v_.index()); }
  [[nodiscard]] bool is_undefined() const { return type() == kind::undefined; }
  [[nodiscard]] bool is_none() const { return type() == kind::none; }
  [[nodiscard]] bool is_bool() const { return type() == kind::boolean; }
  [[nodiscard]] bool is_int() const { return type() == kind::integer; }
  [[nodiscard]] bool is_float() const { return type() == kind::floating; }
  [[nodiscard]] bool is_number() const { return is_int() || is_float() || is_bool(); }  // Python: bool is an int
  [[nodiscard]] bool is_string() const { return type() == kind::string; }
  [[nodiscard]] bool is_array() const { return type() == kind::array; }
  [[nodiscard]] bool is_object() const { return type() == kind::object; }  // dicts and namespaces
  [[nodiscard]] bool is_dict() const;
  [[nodiscard]] bool is_namespace() const;
  [[nodiscard]] bool is_function() const { return type() == kind::function; }

  [[nodiscard]] bool as_bool() const { return std::get<bool>(v_); }
  [[nodiscard]] int64_t as_int() const { return std::get<int64_t>(v_); }
  [[nodiscard]] double as_double() const { return std::get<double>(v_); }
  // A number as a double (bool and int converted); the value must be is_number().
  [[nodiscard]] double to_double() const;
  [[nodiscard]] const std::string& as_string() const { return *std::get<string_ptr>(v_); }
  [[nodiscard]] const array& as_array() const { return *std::get<array_ptr>(v_); }
  [[nodiscard]] const std::vector<value>& items() const;
  [[nodiscard]] const object& as_object() const { return *std::get<object_ptr>(v_); }
  [[nodiscard]] object& mutable_object() const { return *std::get<object_ptr>(v_); }
  [[nodiscard]] const callable& as_function() const { return *std::get<callable_ptr>(v_); }
  // Identity of a shared container or callable (nullptr for scalars): Jinja's `sameas`.
  [[nodiscard]] const void* identity() const;

  // How deeply lists and dicts nest inside this value (0 for scalars and namespaces).
  [[nodiscard]] uint32_t depth() const { return depth_; }

  // Python truthiness: undefined, None, False, 0, 0.0, "", [] and {} are false.
  [[nodiscard]] bool truthy() const;

 private:
  explicit value(std::nullptr_t n) : v_(n) {}
  explicit value(bool b) : v_(b) {}
  explicit value(int64_t i) : v_(i) {}
  explicit value(double d) : v_(d) {}
  explicit value(std::string s) : v_(std::make_shared<const std::string>(std::move(s))) {}

  // The order of the alternatives is the order of `kind`.
  struct undefined_t {};
  using string_ptr = std::shared_ptr<const std::string>;
  std::variant<undefined_t, std::nullptr_t, bool, int64_t, double, string_ptr, array_ptr, object_ptr,
               callable_ptr>
      v_;
  uint32_t depth_ = 0;  // of lists and dicts, computed when they are wrapped (they never change)
};

// A Python list (or tuple) of values.
struct array {
  std::vector<value> items;
  bool tuple = false;  // printed as (a, b) rather than [a, b]; otherwise the same
};

// A Python dict with string keys, in insertion order; or a Jinja namespace() object.
class object {
 public:
  object() = default;
  explicit object(bool is_namespace) : namespace_(is_namespace) {}

  // nullptr when `key` is absent.
  [[nodiscard]] const value* find(std::string_view key) const;
  // Inserts at the end, or replaces the value of an existing key in place (Python's d[k] = v).
  void set(std::string key, value v);

  [[nodiscard]] size_t size() const { return items_.size(); }
  [[nodiscard]] bool empty() const { return items_.empty(); }
  [[nodiscard]] const std::vector<std::pair<std::string, value>>& items() const { return items_; }
  [[nodiscard]] bool is_namespace() const { return namespace_; }

 private:
  // Hashes std::string and std::string_view alike, so that lookups need no temporary string.
  struct key_hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  using key_index = std::unordered_map<std::string, size_t, key_hash, std::equal_to<>>;

  std::vector<std::pair<std::string, value>> items_;
  // Key -> position in items_, built once the dict grows past a few keys (lookups stay O(1) on
  // large JSON objects; small ones, the usual case, are scanned).
  std::unique_ptr<key_index> index_;
  bool namespace_ = false;
};

inline const std::vector<value>& value::items() const { return as_array().items; }
inline bool value::is_dict() const { return is_object() && !as_object().is_namespace(); }
inline bool value::is_namespace() const { return is_object() && as_object().is_namespace(); }

// A new, empty dict or namespace.
[[nodiscard]] object_ptr make_object(bool is_namespace = false);

// Python's name for the type of `v` ("str", "int", "NoneType", ...), for error messages.
[[nodiscard]] std::string_view type_name(const value& v);

// Python's ==: numbers compare by value across int, float and bool; lists and dicts compare
// element by element; namespaces and callables by identity; undefined equals only undefined.
[[nodiscard]] bool equal(const value& a, const value& b);
// The same, adding the work done to `work` (one per value visited, one per 64 string bytes), so
// that renders can bound the time comparisons of large values take.
[[nodiscard]] bool equal(const value& a, const value& b, uint64_t& work);

// Parses a JSON document (an OpenAI request's messages or tools, a whole render context) into a
// value. Objects keep their key order; a repeated key keeps its first position and its last value
// (Python's json.loads). Integers beyond int64 become floats; nesting deeper than 512 is an error.
[[nodiscard]] expected<value> from_json(std::string_view json);

}  // namespace troupe::engine::chat
