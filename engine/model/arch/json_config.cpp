// json_config getters.
#include "engine/model/arch/json_config.hpp"

namespace troupe::engine {

namespace {
error key_error(const std::string& file, const char* key, const char* what) {
  return fail(file + ": key '" + key + "' " + what);
}
}  // namespace

bool json_config::has(const char* key) const {
  simdjson::dom::element e;
  return obj_[key].get(e) == simdjson::SUCCESS && !e.is_null();
}

expected<int64_t> json_config::get_int(const char* key, std::optional<int64_t> fallback) const {
  simdjson::dom::element e;
  if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) {
    if (fallback) return *fallback;
    return key_error(file_, key, "is missing");
  }
  int64_t i;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return i;
  uint64_t u;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return key_error(file_, key, "is out of range");
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS && d == double(int64_t(d)) && std::abs(d) < 9e15)
    return int64_t(d);
  return key_error(file_, key, "must be an integer");
}

expected<double> json_config::get_float(const char* key, std::optional<double> fallback) const {
  simdjson::dom::element e;
  if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) {
    if (fallback) return *fallback;
    return key_error(file_, key, "is missing");
  }
  double d;
  if (e.get_double().get(d) == simdjson::SUCCESS) return d;
  int64_t i;
  if (e.get_int64().get(i) == simdjson::SUCCESS) return double(i);
  return key_error(file_, key, "must be a number");
}

expected<bool> json_config::get_bool(const char* key, std::optional<bool> fallback) const {
  simdjson::dom::element e;
  if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) {
    if (fallback) return *fallback;
    return key_error(file_, key, "is missing");
  }
  bool b;
  if (e.get_bool().get(b) == simdjson::SUCCESS) return b;
  return key_error(file_, key, "must be true or false");
}

expected<std::string> json_config::get_string(const char* key, std::optional<std::string> fallback) const {
  simdjson::dom::element e;
  if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) {
    if (fallback) return *fallback;
    return key_error(file_, key, "is missing");
  }
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) return std::string(s);
  return key_error(file_, key, "must be a string");
}

expected<std::optional<json_config>> json_config::get_object(const char* key) const {
  simdjson::dom::element e;
  if (obj_[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::optional<json_config>{};
  simdjson::dom::object o;
  if (e.get_object().get(o) != simdjson::SUCCESS) return key_error(file_, key, "must be an object");
  return std::optional<json_config>{json_config(o, file_)};
}

}  // namespace troupe::engine
