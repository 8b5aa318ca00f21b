// Runs one of the npm oracle scripts (tests/oracle/*.mjs) with node: the script reads the JSON file
// it is given and prints its answer as JSON on stdout. A missing node or oracle is a test failure,
// not a skip: ctest's oracle_install setup test installs them (tests/oracle/install.sh).
#pragma once

#include <sys/wait.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace troupe::test {

struct oracle_result {
  bool ok = false;
  std::string output;  // stdout on success; stdout + the exit status otherwise
};

// `script` is a file name under tests/oracle; `input_path` is passed as its only argument.
inline oracle_result run_oracle(const std::string& script, const std::string& input_path) {
  const std::string dir = TROUPE_ORACLE_DIR;
  if (!std::filesystem::exists(dir + "/node_modules")) {
    return {false, dir + "/node_modules is missing: run tests/oracle/install.sh (ctest's "
                         "oracle_install test does)"};
  }
  const std::string err_path = input_path + ".stderr";
  const std::string cmd = "node '" + dir + "/" + script + "' '" + input_path + "' 2>'" + err_path + "'";
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (pipe == nullptr) return {false, "cannot start: " + cmd};
  std::string out;
  std::array<char, 65536> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), pipe)) > 0) out.append(buf.data(), n);
  const int status = ::pclose(pipe);
  if (status != 0) {
    std::ifstream err(err_path);
    const std::string err_text((std::istreambuf_iterator<char>(err)), {});
    return {false, cmd + " failed (status " + std::to_string(status) + "): " + err_text + out};
  }
  return {true, out};
}

// Writes `text` to `path` (binary, exact bytes).
inline void write_file(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

}  // namespace troupe::test
