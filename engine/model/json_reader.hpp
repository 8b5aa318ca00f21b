// Typed, checked access to untrusted JSON files (simdjson DOM) for the tokenizer (tokenizer.json,
// tokenizer_config.json) and model loading (config.json); every error names the file and the key.
#pragma once

#include <simdjson.h>

#include <optional>
#include <string>
#include <string_view>

#include "common/expected.hpp"

namespace troupe::engine {

namespace dom = simdjson::dom;

// One JSON file and element-level typed access; errors read "<path>: <key>: <what>", e.g.
// "<path>: model.vocab: expected an object, found array".
class json_reader {
 public:
  explicit json_reader(std::string path) : path_(std::move(path)) {}

  // Reads and parses the file; the document lives as long as this reader.
  [[nodiscard]] expected<dom::element> load();
  // Parses `text` as if it had been read from the file (messages still name path()).
  [[nodiscard]] expected<dom::element> load_text(std::string_view text);

  [[nodiscard]] error bad(const std::string& key, const std::string& what) const;
  [[nodiscard]] error wrong_type(const std::string& key, dom::element e, const char* want) const;

  [[nodiscard]] static std::optional<dom::element> member(dom::object o, std::string_view k);
  // A member that is absent or null reads as nullopt.
  [[nodiscard]] static std::optional<dom::element> present(dom::object o, std::string_view k);

  [[nodiscard]] expected<dom::object> object(dom::element e, const std::string& key) const;
  [[nodiscard]] expected<dom::array> array(dom::element e, const std::string& key) const;
  [[nodiscard]] expected<std::string> string(dom::element e, const std::string& key) const;
  [[nodiscard]] expected<bool> boolean(dom::element e, const std::string& key) const;
  // Only values that fit in int64 (no unsigned beyond it, no floating point).
  [[nodiscard]] expected<int64_t> integer(dom::element e, const std::string& key) const;
  // An optional boolean member with a default.
  [[nodiscard]] expected<bool> flag(dom::object o, std::string_view k, const std::string& key, bool dflt) const;
  // The "type" string of a tagged object.
  [[nodiscard]] expected<std::string> tag(dom::object o, const std::string& key) const;

  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  expected<dom::element> parse();

  std::string path_;
  simdjson::padded_string text_;
  dom::parser parser_;
};

// Keyed getters over one object of a Hugging Face config.json (the document must outlive it);
// errors read "<file>: key '<key>' is missing" or "... must be <type>". Null counts as absent.
class json_config {
 public:
  json_config(dom::object obj, std::string file) : obj_(obj), file_(std::move(file)) {}

  [[nodiscard]] bool has(const char* key) const;
  // Missing key -> `fallback` (nullopt fallback means the key is required).
  // Integers: int64 range; a float is accepted when it is integral and below 9e15 in magnitude.
  [[nodiscard]] expected<int64_t> get_int(const char* key, std::optional<int64_t> fallback = std::nullopt) const;
  [[nodiscard]] expected<double> get_float(const char* key, std::optional<double> fallback = std::nullopt) const;
  [[nodiscard]] expected<bool> get_bool(const char* key, std::optional<bool> fallback = std::nullopt) const;
  [[nodiscard]] expected<std::string> get_string(const char* key,
                                                 std::optional<std::string> fallback = std::nullopt) const;
  // A nested object, if present and an object (null counts as absent).
  [[nodiscard]] expected<std::optional<json_config>> get_object(const char* key) const;

  [[nodiscard]] const std::string& file() const { return file_; }

 private:
  dom::object obj_;
  std::string file_;
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
