// API keys (see api_keys.hpp).
#include "frontend/core/api_keys.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <optional>
#include <set>

namespace troupe::frontend {

namespace {

std::optional<std::string> bad_key(std::string_view key) {
  if (key.empty()) return "an empty key";
  for (char c : key)
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return "a key with whitespace or control characters";
  return std::nullopt;
}

std::optional<std::array<unsigned char, 32>> parse_hash(std::string_view hex) {
  if (hex.size() != 64) return std::nullopt;
  std::array<unsigned char, 32> out{};
  for (size_t i = 0; i < 32; ++i) {
    unsigned v = 0;
    auto [p, ec] = std::from_chars(hex.data() + 2 * i, hex.data() + 2 * i + 2, v, 16);
    if (ec != std::errc() || p != hex.data() + 2 * i + 2) return std::nullopt;
    out[i] = static_cast<unsigned char>(v);
  }
  return out;
}

bool good_label(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '_' && c != '-') return false;
  return true;
}

// The fields after the key on a file line; the error names the field, never the key.
std::optional<std::string> parse_fields(std::string_view rest, key_entry& e) {
  while (!rest.empty()) {
    const size_t start = rest.find_first_not_of(" \t");
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    const size_t end = rest.find_first_of(" \t");
    const std::string_view field = rest.substr(0, end);
    rest.remove_prefix(end == std::string_view::npos ? rest.size() : end);
    const size_t eq = field.find('=');
    if (eq == std::string_view::npos) return "a field that is not NAME=VALUE (label, weight or tpm)";
    const std::string_view name = field.substr(0, eq), value = field.substr(eq + 1);
    if (name == "label") {
      if (!good_label(value)) return "a label that is not 1 to 64 letters, digits, '.', '_' or '-'";
      e.label = std::string(value);
    } else if (name == "weight") {
      double w = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), w);
      if (ec != std::errc() || p != value.data() + value.size() || !(w >= 0.01 && w <= 1000))
        return "a weight that is not a number from 0.01 to 1000";
      e.weight = w;
    } else if (name == "tpm") {
      int64_t n = 0;
      auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
      if (ec != std::errc() || p != value.data() + value.size() || n < 0)
        return "a tpm (tokens per minute) that is not a whole number >= 0";
      e.tokens_per_minute = n;
    } else {
      return "an unknown field '" + std::string(name) + "' (label, weight or tpm)";
    }
  }
  return std::nullopt;
}

}  // namespace

std::array<unsigned char, 32> hash_key(std::string_view key) {
  std::array<unsigned char, 32> out{};
  unsigned int n = 0;
  EVP_Digest(key.data(), key.size(), out.data(), &n, EVP_sha256(), nullptr);
  return out;
}

expected<api_keys> api_keys::load(const std::vector<std::string>& keys, const std::string& file) {
  api_keys out;
  std::set<std::string> labels;
  const auto add = [&out, &labels](key_entry e) -> std::optional<std::string> {
    if (e.label.empty()) e.label = "key-" + std::to_string(out.keys_.size() + 1);
    if (!labels.insert(e.label).second) return "the label '" + e.label + "' a second time";
    out.keys_.push_back(std::move(e));
    return std::nullopt;
  };
  for (size_t i = 0; i < keys.size(); ++i) {
    if (auto why = bad_key(keys[i])) return fail("--api-key #" + std::to_string(i + 1) + ": " + *why);
    key_entry e;
    e.hash = hash_key(keys[i]);
    if (auto why = add(std::move(e))) return fail("--api-key #" + std::to_string(i + 1) + ": " + *why);
  }
  if (!file.empty()) {
    std::ifstream in(file);
    if (!in) return fail("--api-key-file " + file + ": cannot be read");
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      const auto where = [&file, n](const std::string& why) {
        return fail("--api-key-file " + file + ": line " + std::to_string(n) + " has " + why);
      };
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
      size_t start = 0;
      while (start < line.size() && (line[start] == ' ' || line[start] == '\t')) ++start;
      std::string_view text = std::string_view(line).substr(start);
      if (text.empty() || text.front() == '#') continue;
      const size_t end = text.find_first_of(" \t");
      const std::string_view key = text.substr(0, end);
      key_entry e;
      if (key.starts_with("sha256:")) {
        auto h = parse_hash(key.substr(7));
        if (!h) return where("a sha256: key that is not 64 hex digits");
        e.hash = *h;
      } else {
        if (auto why = bad_key(key)) return where(*why);
        e.hash = hash_key(key);
      }
      if (end != std::string_view::npos)
        if (auto why = parse_fields(text.substr(end), e)) return where(*why);
      if (auto why = add(std::move(e))) return where(*why);
    }
  }
  return out;
}

const key_entry* api_keys::find(std::string_view presented) const {
  const auto h = hash_key(presented);
  const key_entry* match = nullptr;
  for (const auto& k : keys_) {  // no early exit: every stored hash is compared
    const bool same = CRYPTO_memcmp(k.hash.data(), h.data(), h.size()) == 0;
    match = same ? &k : match;
  }
  return match;
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
