// Typed, checked access to a Hugging Face config.json object; every getter's error names the file
// and the key. Internal to model loading (it exposes simdjson).
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>

#include "common/expected.hpp"

namespace troupe::engine {

class json_config {
 public:
  json_config(simdjson::dom::object obj, std::string file) : obj_(obj), file_(std::move(file)) {}

  [[nodiscard]] bool has(const char* key) const;
  // Missing key -> `fallback` (nullopt fallback means the key is required).
  [[nodiscard]] expected<int64_t> get_int(const char* key, std::optional<int64_t> fallback = std::nullopt) const;
  [[nodiscard]] expected<double> get_float(const char* key, std::optional<double> fallback = std::nullopt) const;
  [[nodiscard]] expected<bool> get_bool(const char* key, std::optional<bool> fallback = std::nullopt) const;
  [[nodiscard]] expected<std::string> get_string(const char* key,
                                                 std::optional<std::string> fallback = std::nullopt) const;
  // A nested object, if present and an object (null counts as absent).
  [[nodiscard]] expected<std::optional<json_config>> get_object(const char* key) const;

  [[nodiscard]] const std::string& file() const { return file_; }

 private:
  simdjson::dom::object obj_;
  std::string file_;
};

}  // namespace troupe::engine
