// Helpers shared by the file-format tests: a scratch folder per suite, whole-file reads, bytes of
// a vector.
#pragma once

#include "tests/test_tmp.hpp"
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

namespace troupe::engine::test_util {

// <process scratch folder>/<suite>/<name>, creating the folder.
inline std::string tmp_path(const std::string& suite, const std::string& name) {
  const std::filesystem::path dir = std::filesystem::path(test::process_tmp()) / suite;
  std::filesystem::create_directories(dir);
  return (dir / name).string();
}

inline std::vector<std::byte> read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<char> chars((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<std::byte> out(chars.size());
  std::memcpy(out.data(), chars.data(), chars.size());
  return out;
}

template <class T>
std::vector<std::byte> as_bytes(const std::vector<T>& v) {
  std::vector<std::byte> out(v.size() * sizeof(T));
  std::memcpy(out.data(), v.data(), out.size());
  return out;
}

}  // namespace troupe::engine::test_util
