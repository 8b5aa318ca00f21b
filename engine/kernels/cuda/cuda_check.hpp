// Error handling for CUDA runtime calls: every call is checked and a failure becomes an error value
// naming the call, never an abort of the node.
#pragma once

#include <cuda_runtime_api.h>

#include <string>

#include "common/expected.hpp"

namespace troupe::engine::cuda {

// "what: <CUDA's message for e>": the one spelling of a failed CUDA runtime call.
[[nodiscard]] std::string cuda_error(const std::string& what, cudaError_t e);

// "what: cuBLAS status N" for a failed cuBLAS(Lt) call.
[[nodiscard]] std::string cublas_error(const std::string& what, int status);

// {} for cudaSuccess; otherwise the error cuda_error(what, e).
[[nodiscard]] expected<void> check(cudaError_t e, const std::string& what);

// Number of CUDA devices visible to this process; 0 when there is no driver or no device.
[[nodiscard]] int device_count();

// A short description of device `index` ("NVIDIA H200, 139.8 GiB, sm_90"), or an error.
[[nodiscard]] expected<std::string> describe_device(int index);

}  // namespace troupe::engine::cuda
