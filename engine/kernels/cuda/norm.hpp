// Host launchers for the normalization kernels; the kernels and their per-dtype instantiations live
// in norm.cu. All pointers are device pointers; launches are asynchronous on `stream`.
#pragma once

#include <cuda_runtime_api.h>

#include <cstdint>

namespace troupe::engine::cuda {

// out[n, dim] = x / rms(x) * gamma, row-wise, f32. Returns the launch status.
[[nodiscard]] cudaError_t launch_rms_norm(const float* x, const float* gamma, int64_t n, int64_t dim, float eps,
                                          float* out, cudaStream_t stream);

// acc[n, dim] += x, then out = acc / rms(acc) * gamma, row-wise, f32, in one pass. out may alias x.
[[nodiscard]] cudaError_t launch_add_rms_norm(float* acc, const float* x, const float* gamma, int64_t n, int64_t dim,
                                              float eps, float* out, cudaStream_t stream);

}  // namespace troupe::engine::cuda
