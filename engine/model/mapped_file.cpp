// mapped_file: a whole checkpoint mapped read-only, so weights are used in place without a copy.
// Contract: the file must not be truncated by someone else while mapped (that would raise SIGBUS).
#include "engine/model/mapped_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <algorithm>
#include <utility>

namespace troupe::engine {

namespace {

std::string errno_text(int err) { return std::strerror(err); }

// Closes the descriptor on every return path; the mapping outlives it.
struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

expected<mapped_file> mapped_file::open(const std::string& path, load_mode mode) {
  // O_NONBLOCK keeps a FIFO passed by mistake from blocking the open; it is refused below.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return fail(path + ": cannot open: " + errno_text(errno));
  fd_guard guard{fd};

  struct stat st {};
  if (::fstat(fd, &st) != 0) return fail(path + ": cannot stat: " + errno_text(errno));
  if (!S_ISREG(st.st_mode)) return fail(path + ": not a regular file");

  mapped_file mf;
  mf.path_ = path;
  if (st.st_size == 0) return mf;

  const auto size = static_cast<size_t>(st.st_size);
  if (mode == load_mode::read) {
    constexpr size_t huge_page = size_t(2) << 20;
    const size_t rounded = (size + huge_page - 1) / huge_page * huge_page;
    void* p = ::mmap(nullptr, rounded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return fail(path + ": cannot allocate " + std::to_string(size) + " bytes: " +
                                     errno_text(errno));
    // A hint: without transparent huge pages the copy still works, on 4 KiB pages.
    (void)::madvise(p, rounded, MADV_HUGEPAGE);
    mf.data_ = static_cast<const std::byte*>(p);
    mf.size_ = size;
    mf.mapped_size_ = rounded;  // from here on, mf unmaps it on every error return
    auto* dst = static_cast<char*>(p);
    for (size_t done = 0; done < size;) {
      const ssize_t n = ::pread(fd, dst + done, std::min<size_t>(size - done, size_t(1) << 30), off_t(done));
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return fail(path + ": read failed: " + errno_text(errno));
      if (n == 0) return fail(path + ": file shrank while being read");
      done += size_t(n);
    }
    (void)::mprotect(p, rounded, PROT_READ);
    return mf;
  }
  void* p = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  if (p == MAP_FAILED) return fail(path + ": cannot map " + std::to_string(size) + " bytes: " +
                                   errno_text(errno));
  // Only a hint: the loader reads every weight soon, so start the read-ahead now.
  (void)::madvise(p, size, MADV_WILLNEED);
  mf.data_ = static_cast<const std::byte*>(p);
  mf.size_ = size;
  mf.mapped_size_ = size;
  return mf;
}

mapped_file::mapped_file(mapped_file&& other) noexcept
    : path_(std::move(other.path_)),
      data_(std::exchange(other.data_, nullptr)),
      size_(std::exchange(other.size_, 0)),
      mapped_size_(std::exchange(other.mapped_size_, 0)) {}

mapped_file& mapped_file::operator=(mapped_file&& other) noexcept {
  if (this != &other) {
    if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), mapped_size_);
    path_ = std::move(other.path_);
    data_ = std::exchange(other.data_, nullptr);
    size_ = std::exchange(other.size_, 0);
    mapped_size_ = std::exchange(other.mapped_size_, 0);
  }
  return *this;
}

mapped_file::~mapped_file() {
  if (data_ != nullptr) ::munmap(const_cast<std::byte*>(data_), mapped_size_);
}

}  // namespace troupe::engine
