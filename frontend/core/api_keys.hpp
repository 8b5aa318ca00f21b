// The API keys that let clients in: given on the command line (--api-key, repeatable) or in a file
// (--api-key-file, one key per line; blank lines and lines starting with # ignored). With no keys,
// every request is let in.
//
// A file line is `KEY [label=NAME] [weight=W] [tpm=N]`, fields separated by spaces or tabs:
//   KEY     the key itself, or `sha256:` and the 64 hex digits of its SHA-256 (so the file need
//           not hold the key: `printf %s "$KEY" | sha256sum`);
//   label   who the key belongs to, in logs, metrics and the fair queue (default key-N, N counting
//           the flags first, then the file's keys); letters, digits, . _ - up to 64; unique;
//   weight  its share of a full queue against the other keys' (default 1; 0.01 to 1000);
//   tpm     a quota of prompt plus generated tokens per minute (default 0: none).
// Only the SHA-256 of each key is kept in memory; a presented key is hashed and compared with every
// stored hash in constant time, so neither the time nor the logs tell anything about the keys.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/expected.hpp"

namespace troupe::frontend {

// One key's identity and share.
struct key_entry {
  std::array<unsigned char, 32> hash{};  // SHA-256 of the key
  std::string label;                     // the tenant: logs, metrics, fairness
  double weight = 1;                     // share of a full queue (VTC weight)
  int64_t tokens_per_minute = 0;         // quota of prompt + generated tokens; 0: none
};

class api_keys {
 public:
  api_keys() = default;
  // Errors: an unreadable file, an empty key, a key with whitespace or control characters, a bad
  // field or a repeated label (the error names the file and line, never the key).
  [[nodiscard]] static expected<api_keys> load(const std::vector<std::string>& keys, const std::string& file);

  [[nodiscard]] bool enabled() const { return !keys_.empty(); }
  // The entry whose key `presented` is, or null. Time depends only on the number of keys and the
  // length of `presented`, never on where bytes differ. Thread-safe (const).
  [[nodiscard]] const key_entry* find(std::string_view presented) const;
  [[nodiscard]] bool check(std::string_view presented) const { return find(presented) != nullptr; }
  [[nodiscard]] const std::vector<key_entry>& entries() const { return keys_; }
  // The key of an HTTP Authorization header value ("Bearer KEY"); empty when it has another form.
  [[nodiscard]] static std::string_view bearer(std::string_view header);

 private:
  std::vector<key_entry> keys_;
};

// SHA-256 of `key` (OpenSSL's libcrypto).
[[nodiscard]] std::array<unsigned char, 32> hash_key(std::string_view key);

}  // namespace troupe::frontend
