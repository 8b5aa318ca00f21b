// The API keys that let clients in: given on the command line (--api-key, repeatable) or in a file
// (--api-key-file, one key per line; blank lines and lines starting with # ignored). With no keys,
// every request is let in. Keys are compared in constant time and never logged.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace troupe::frontend {

class api_keys {
 public:
  api_keys() = default;
  // Errors: an unreadable file, an empty key, a key with whitespace or control characters (the
  // error names the file and line, never the key).
  [[nodiscard]] static expected<api_keys> load(const std::vector<std::string>& keys, const std::string& file);

  [[nodiscard]] bool enabled() const { return !keys_.empty(); }
  // True when `presented` equals one of the keys. Time depends only on the lengths involved, never
  // on where the bytes differ. Thread-safe (const).
  [[nodiscard]] bool check(std::string_view presented) const;
  // The key of an HTTP Authorization header value ("Bearer KEY"); empty when it has another form.
  [[nodiscard]] static std::string_view bearer(std::string_view header);

 private:
  std::vector<std::string> keys_;
};

}  // namespace troupe::frontend
