#include "engine/kernels/cpu/cpu_features.hpp"

#include <cstdlib>
#include <string_view>

namespace troupe::engine::cpu {

const cpu_features& detect_cpu_features() {
  static const cpu_features features = [] {
    cpu_features f;
    __builtin_cpu_init();
    f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
    f.avx512_bf16 = f.avx512 && __builtin_cpu_supports("avx512bf16");
    f.avx512_vnni = f.avx512 && __builtin_cpu_supports("avx512vnni");
    if (const char* cap = std::getenv("TROUPE_SIMD")) {
      const std::string_view c(cap);
      if (c == "avx2" || c == "scalar") f.avx512 = f.avx512_bf16 = f.avx512_vnni = false;
      if (c == "scalar") f.avx2_fma = false;
    }
    return f;
  }();
  return features;
}

}  // namespace troupe::engine::cpu
