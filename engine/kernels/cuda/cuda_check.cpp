#include "engine/kernels/cuda/cuda_check.hpp"

#include <cuda_runtime_api.h>

#include <cstdio>

namespace troupe::engine::cuda {

std::string cuda_error(const std::string& what, cudaError_t e) { return what + ": " + cudaGetErrorString(e); }

std::string cublas_error(const std::string& what, int status) {
  return what + ": cuBLAS status " + std::to_string(status);
}

expected<void> check(cudaError_t e, const std::string& what) {
  if (e == cudaSuccess) return {};
  return fail(cuda_error(what, e));
}

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
    return fail(cuda_error("cudaGetDeviceProperties(" + std::to_string(index) + ")", e));
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s, %.1f GiB, sm_%d%d", p.name, double(p.totalGlobalMem) / (1u << 30), p.major,
                p.minor);
  return std::string(buf);
}

}  // namespace troupe::engine::cuda
