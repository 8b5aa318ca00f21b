// A scratch folder of this test process: TROUPE_TEST_TMP/<pid>, removed when the process exits.
// ctest runs tests in parallel processes; a folder per process keeps their files apart.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace troupe::test {

inline const std::string& process_tmp() {
  struct folder {
    std::string path;
    folder() : path(std::string(TROUPE_TEST_TMP) + "/" + std::to_string(::getpid())) {
      std::filesystem::create_directories(path);
    }
    ~folder() {
      std::error_code ec;
      std::filesystem::remove_all(path, ec);
    }
  };
  static const folder f;
  return f.path;
}

}  // namespace troupe::test
