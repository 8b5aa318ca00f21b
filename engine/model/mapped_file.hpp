// A read-only memory mapping of a whole file; weights are used in place from it (no copy).
#pragma once

#include <cstddef>
#include <span>
#include <string>

#include "common/expected.hpp"

namespace troupe::engine {

class mapped_file {
 public:
  // Maps `path` read-only. An empty file maps to an empty span. Errors name the path and errno text.
  [[nodiscard]] static expected<mapped_file> open(const std::string& path);

  mapped_file() = default;
  mapped_file(mapped_file&& other) noexcept;
  mapped_file& operator=(mapped_file&& other) noexcept;
  mapped_file(const mapped_file&) = delete;
  mapped_file& operator=(const mapped_file&) = delete;
  ~mapped_file();

  [[nodiscard]] std::span<const std::byte> bytes() const { return {data_, size_}; }
  [[nodiscard]] const std::string& path() const { return path_; }

 private:
  std::string path_;
  const std::byte* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace troupe::engine
