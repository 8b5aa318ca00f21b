// A file being written by the checkpoint writers: every write is checked, errors name the path, and
// a file that could not be written completely is removed rather than left half-written.
#pragma once

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/expected.hpp"

namespace troupe::engine::detail {

class output_file {
 public:
  explicit output_file(std::string path) : path_(std::move(path)) {}
  output_file(const output_file&) = delete;
  output_file& operator=(const output_file&) = delete;
  ~output_file() {
    if (f_ != nullptr) {  // not closed: an error happened on the way
      std::fclose(f_);
      std::remove(path_.c_str());
    }
  }

  [[nodiscard]] expected<void> open() {
    f_ = std::fopen(path_.c_str(), "wb");
    if (f_ == nullptr) return fail(path_ + ": cannot create: " + std::strerror(errno));
    return {};
  }

  [[nodiscard]] expected<void> write(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, f_) != n)
      return fail(path_ + ": write failed: " + std::strerror(errno));
    return {};
  }

  [[nodiscard]] expected<void> write_zeros(size_t n) {
    static constexpr char zeros[256] = {};
    while (n > 0) {
      const size_t k = n < sizeof(zeros) ? n : sizeof(zeros);
      if (auto r = write(zeros, k); !r) return r;
      n -= k;
    }
    return {};
  }

  // Flushes and closes; only a file closed here without error is kept.
  [[nodiscard]] expected<void> close() {
    const bool ok = std::fflush(f_) == 0;
    const int err = errno;
    const bool closed = std::fclose(f_) == 0;
    f_ = nullptr;
    if (!ok || !closed) {
      std::remove(path_.c_str());
      return fail(path_ + ": write failed: " + std::strerror(ok ? errno : err));
    }
    return {};
  }

 private:
  std::string path_;
  std::FILE* f_ = nullptr;
};

}  // namespace troupe::engine::detail
