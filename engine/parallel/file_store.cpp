// The file-backed rendezvous store: one file per key in a directory, written by rename so that
// readers never see half a value. For ranks that are processes on one host (or a shared mount).
#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <thread>

#include <unistd.h>

#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::engine::parallel {
namespace {

namespace fs = std::filesystem;

// Keys become file names: [A-Za-z0-9_-] and inner dots kept, everything else as %XX, so "a/b" and
// ".." cannot leave the directory and no key collides with the ".tmp." files being written.
[[nodiscard]] std::string escape_key(const std::string& key) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < key.size(); ++i) {
    const auto c = static_cast<unsigned char>(key[i]);
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
                       c == '-' || (c == '.' && i != 0);
    if (plain) {
      out += static_cast<char>(c);
    } else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out.empty() ? std::string("%") : out;
}

class file_store final : public rendezvous_store {
 public:
  explicit file_store(fs::path directory) : directory_(std::move(directory)) {}

  [[nodiscard]] expected<void> set(const std::string& key, std::span<const std::byte> value) override {
    const fs::path final_path = directory_ / escape_key(key);
    const fs::path tmp_path = directory_ / (".tmp." + std::to_string(::getpid()) + "." +
                                            std::to_string(next_tmp.fetch_add(1)) + "." + escape_key(key));
    {
      std::ofstream out(tmp_path, std::ios::binary | std::ios::trunc);
      out.write(reinterpret_cast<const char*>(value.data()), static_cast<std::streamsize>(value.size()));
      out.close();
      if (!out) return fail("rendezvous store: cannot write " + tmp_path.string());
    }
    std::error_code ec;
    fs::rename(tmp_path, final_path, ec);
    if (ec) {
      fs::remove(tmp_path, ec);
      return fail("rendezvous store: cannot rename into " + final_path.string() + ": " + ec.message());
    }
    return {};
  }

  [[nodiscard]] expected<std::vector<std::byte>> get(const std::string& key) override {
    const fs::path path = directory_ / escape_key(key);
    std::ifstream in(path, std::ios::binary);
    if (!in) return fail("rendezvous store: key '" + key + "' is not set (no file " + path.string() + ")");
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) return fail("rendezvous store: cannot read " + path.string());
    std::vector<std::byte> value(bytes.size());
    if (!bytes.empty()) std::memcpy(value.data(), bytes.data(), bytes.size());
    return value;
  }

  // Polls: a few milliseconds of latency is nothing next to connecting a group, and it needs no
  // inotify (which misses writes on network file systems).
  [[nodiscard]] expected<void> wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    return poll_for_keys(keys, timeout, std::chrono::milliseconds(5), [this](const std::string& key) -> expected<void> {
      const fs::path path = directory_ / escape_key(key);
      std::error_code ec;
      if (fs::exists(path, ec)) return {};
      return fail("no file " + path.string());
    });
  }

 private:
  // Process-wide, so two stores on one directory in one process never share a temporary name.
  static inline std::atomic<uint64_t> next_tmp{0};
  fs::path directory_;
};

}  // namespace

expected<std::shared_ptr<rendezvous_store>> make_file_store(const std::string& directory) {
  std::error_code ec;
  fs::create_directories(directory, ec);
  if (ec || !fs::is_directory(directory, ec))
    return fail("rendezvous store: cannot create directory " + directory + (ec ? ": " + ec.message() : ""));
  return std::shared_ptr<rendezvous_store>(std::make_shared<file_store>(fs::path(directory)));
}

}  // namespace troupe::engine::parallel
