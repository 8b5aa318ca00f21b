#include "engine/kernels/cuda/cuda_check.hpp"

#include <cuda_runtime_api.h>

#include <cstdio>

namespace troupe::engine::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device/driver" error
    return 0;
  }
  return n;
}

expected<std::string> describe_device(int index) {
  cudaDeviceProp p{};
  if (cudaError_t e = cudaGetDeviceProperties(&p, index); e != cudaSuccess)
    return fail("cudaGetDeviceProperties(" + std::to_string(index) + "): " + cudaGetErrorString(e));
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, %.1f GiB, sm_%d%d", p.name, double(p.totalGlobalMem) / (1u << 30), p.major,
                p.minor);
  return std::string(buf);
}

}  // namespace troupe::engine::cuda
