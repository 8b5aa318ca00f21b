// API keys (see api_keys.hpp).
#include "frontend/core/api_keys.hpp"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <optional>

namespace troupe::frontend {

namespace {

// Compares in time that depends on the lengths only.
bool equal_constant_time(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  const size_t n = std::max(a.size(), b.size());
  for (size_t i = 0; i < n; ++i) {
    const unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    const unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(x ^ y);
  }
  return diff == 0;
}

std::optional<std::string> bad_key(std::string_view key) {
  if (key.empty()) return "an empty key";
  for (char c : key)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "a key with whitespace or control characters";
  return std::nullopt;
}

}  // namespace

expected<api_keys> api_keys::load(const std::vector<std::string>& keys, const std::string& file) {
  api_keys out;
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto why = bad_key(keys[i])) return fail("--api-key #" + std::to_string(i + 1) + ": " + *why);
    out.keys_.push_back(keys[i]);
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return fail("--api-key-file " + file + ": cannot be read");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      size_t start = 0;
      while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
      const std::string_view key = std::string_view(line).substr(start);
      if (key.empty() || key.front() == '#') continue;
      if (auto why = bad_key(key)) return fail("--api-key-file " + file + ": line " + std::to_string(n) + " has " + *why);
      out.keys_.emplace_back(key);
    }
  }
  return out;
}

bool api_keys::check(std::string_view presented) const {
  bool ok = false;
  for (const auto& k : keys_) ok |= equal_constant_time(k, presented);  // no early exit
  return ok;
}

std::string_view api_keys::bearer(std::string_view header) {
  constexpr std::string_view scheme = "Bearer ";
  if (header.size() <= scheme.size()) return {};
  for (size_t i = 0; i < scheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(header[i])) != std::tolower(static_cast<unsigned char>(scheme[i])))
      return {};
  std::string_view key = header.substr(scheme.size());
  while (!key.empty() && key.front() == ' ') key.remove_prefix(1);
  while (!key.empty() && key.back() == ' ') key.remove_suffix(1);
  return key;
}

}  // namespace troupe::frontend
