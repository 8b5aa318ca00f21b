// json_reader (file loading, element-level typed access) and json_config (config.json's keyed
// getters): the one JSON reading helper of the tokenizer and the model loader.
#include "engine/model/json_reader.hpp"

#include <cmath>
#include <filesystem>

namespace troupe::engine {

namespace {

const char* type_name(dom::element_type t) {
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

error key_error(const std::string& file, const char* key, const char* what) {
  return fail(file + ": key '" + key + "' " + what);
}

// An absent (or null) config key: its fallback, or the "is missing" error.
template <typename T>
expected<T> fallback_or_missing(const std::optional<T>& fallback, const std::string& file, const char* key) {
  if (fallback) return *fallback;
  return key_error(file, key, "is missing");
}

// A config key that simdjson reads as `Json`, returned as `T`: absent or null gives the fallback
// (or "is missing"), a value of another type the error "<wrong>".
template <typename T, typename Json>
expected<T> read_as(dom::object o, const std::string& file, const char* key, const std::optional<T>& fallback,
                    const char* wrong) {
  const auto e = json_reader::present(o, key);
  if (!e) return fallback_or_missing(fallback, file, key);
  Json v;
  if (e->get<Json>().get(v) == simdjson::SUCCESS) return T(v);
  return key_error(file, key, wrong);
}

}  // namespace

// ---- json_reader ----

expected<dom::element> json_reader::load() {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path_, ec)) return fail(path_ + ": no such file");
  if (auto e = simdjson::padded_string::load(path_).get(text_)) {
    return fail(path_ + ": cannot read: " + simdjson::error_message(e));
  }
  return parse();
}

expected<dom::element> json_reader::load_text(std::string_view text) {
  text_ = simdjson::padded_string(text);
  return parse();
}

expected<dom::element> json_reader::parse() {
  dom::element root;
  if (auto e = parser_.parse(text_).get(root)) {
    return fail(path_ + ": malformed JSON: " + simdjson::error_message(e));
  }
  return root;
}

error json_reader::bad(const std::string& key, const std::string& what) const {
  return fail(path_ + ": " + key + ": " + what);
}

error json_reader::wrong_type(const std::string& key, dom::element e, const char* want) const {
  return bad(key, std::string("expected ") + want + ", found " + type_name(e.type()));
}

std::optional<dom::element> json_reader::member(dom::object o, std::string_view k) {
  dom::element e;
  if (o.at_key(k).get(e)) return std::nullopt;
  return e;
}

std::optional<dom::element> json_reader::present(dom::object o, std::string_view k) {
  auto e = member(o, k);
  if (e && e->is_null()) return std::nullopt;
  return e;
}

expected<dom::object> json_reader::object(dom::element e, const std::string& key) const {
  dom::object o;
  if (e.get_object().get(o)) return wrong_type(key, e, "an object");
  return o;
}

expected<dom::array> json_reader::array(dom::element e, const std::string& key) const {
  dom::array a;
  if (e.get_array().get(a)) return wrong_type(key, e, "an array");
  return a;
}

expected<std::string> json_reader::string(dom::element e, const std::string& key) const {
  std::string_view s;
  if (e.get_string().get(s)) return wrong_type(key, e, "a string");
  return std::string(s);
}

expected<bool> json_reader::boolean(dom::element e, const std::string& key) const {
  bool b = false;
  if (e.get_bool().get(b)) return wrong_type(key, e, "a boolean");
  return b;
}

expected<int64_t> json_reader::integer(dom::element e, const std::string& key) const {
  int64_t v = 0;
  if (e.get_int64().get(v)) return wrong_type(key, e, "an integer");
  return v;
}

expected<bool> json_reader::flag(dom::object o, std::string_view k, const std::string& key, bool dflt) const {
  const auto e = present(o, k);
  if (!e) return dflt;
  return boolean(*e, key);
}

expected<std::string> json_reader::tag(dom::object o, const std::string& key) const {
  const auto e = member(o, "type");
  if (!e) return bad(key, "has no \"type\"");
  return string(*e, key + ".type");
}

// ---- json_config ----

bool json_config::has(const char* key) const { return json_reader::present(obj_, key).has_value(); }

expected<int64_t> json_config::get_int(const char* key, std::optional<int64_t> fallback) const {
  const auto e = json_reader::present(obj_, key);
  if (!e) return fallback_or_missing(fallback, file_, key);
  int64_t i;
  if (e->get_int64().get(i) == simdjson::SUCCESS) return i;
  uint64_t u;
  if (e->get_uint64().get(u) == simdjson::SUCCESS) return key_error(file_, key, "is out of range");
  double d;
  if (e->get_double().get(d) == simdjson::SUCCESS && d == double(int64_t(d)) && std::abs(d) < 9e15)
    return int64_t(d);
  return key_error(file_, key, "must be an integer");
}

// simdjson's get<double> reads integers (signed and unsigned) as well.
expected<double> json_config::get_float(const char* key, std::optional<double> fallback) const {
  return read_as<double, double>(obj_, file_, key, fallback, "must be a number");
}

expected<bool> json_config::get_bool(const char* key, std::optional<bool> fallback) const {
  return read_as<bool, bool>(obj_, file_, key, fallback, "must be true or false");
}

expected<std::string> json_config::get_string(const char* key, std::optional<std::string> fallback) const {
  return read_as<std::string, std::string_view>(obj_, file_, key, fallback, "must be a string");
}

expected<std::optional<json_config>> json_config::get_object(const char* key) const {
  const auto e = json_reader::present(obj_, key);
  if (!e) return std::optional<json_config>{};
  dom::object o;
  if (e->get_object().get(o) != simdjson::SUCCESS) return key_error(file_, key, "must be an object");
  return std::optional<json_config>{json_config(o, file_)};
}

}  // namespace troupe::engine
