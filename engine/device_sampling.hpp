// How one row of logits is sampled on a device: shared by the backend interface and the CUDA
// kernel (plain C++17, for nvcc). The rules are the kernel's: engine/kernels/cuda/sampling.hpp.
#pragma once

#include <cstdint>

namespace troupe::engine {

struct device_sampling {
  float temperature = 0.0f;  // 0 = greedy (the lowest id among equal maxima)
  int32_t top_k = 0;         // 0 = no cut
  float top_p = 1.0f;        // 1 = no cut
  uint64_t seed = 0;         // the draw depends on (seed, counter) alone
  uint64_t counter = 0;
};

}  // namespace troupe::engine
