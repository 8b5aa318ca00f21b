// A whole file's bytes, read-only: memory-mapped (the default: weights are used in place, no copy)
// or read into anonymous memory backed by huge pages (--no-mmap), for machines where reading a
// page-cache mapping is slow (measured on this VM: see docs/PERFORMANCE.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "common/expected.hpp"

namespace troupe::engine {

enum class load_mode : uint8_t {
  map,   // mmap the file: no copy, pages shared with the page cache
  read,  // read the file into private anonymous memory (2 MiB huge pages where the kernel allows)
};

class mapped_file {
 public:
  // Opens `path` read-only. An empty file gives an empty span. Errors name the path and errno text.
  [[nodiscard]] static expected<mapped_file> open(const std::string& path, load_mode mode = load_mode::map);

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
  size_t mapped_size_ = 0;  // bytes to munmap (read mode rounds up to the huge page size)
};

}  // namespace troupe::engine
