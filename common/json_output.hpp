// Small JSON writers for the hand-written --json outputs of the CLI and the benchmarks (numbers and
// integer arrays; strings are in json_escape.hpp, included here).
#pragma once

#include <cstdio>
#include <string>
#include <vector>

#include "common/json_escape.hpp"

namespace troupe {

template <class T>
[[nodiscard]] std::string json_int_array(const std::vector<T>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? "," : "") + std::to_string(v[i]);
  return s + "]";
}

// A finite double as JSON (non-finite values become null, which JSON can carry).
[[nodiscard]] inline std::string json_number(double x) {
  if (x != x || x > 1.7e308 || x < -1.7e308) return "null";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

}  // namespace troupe
