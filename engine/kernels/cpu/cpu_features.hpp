// Which SIMD instruction sets this CPU offers; the kernels pick their path from it once.
#pragma once

namespace troupe::engine::cpu {

struct cpu_features {
  bool avx2_fma = false;     // AVX2 + FMA + F16C
  bool avx512 = false;       // AVX-512 F, BW, VL, DQ
  bool avx512_bf16 = false;  // vdpbf16ps
  bool avx512_vnni = false;  // vpdpbusd
};

// Detected once (thread-safe static); TROUPE_SIMD=avx2|scalar in the environment caps the path,
// so that every path can be tested on one machine.
[[nodiscard]] const cpu_features& detect_cpu_features();

}  // namespace troupe::engine::cpu
