// Error handling for CUDA runtime calls: every call is checked and a failure becomes an error value
// naming the call, never an abort of the node.
#pragma once

#include <string>

#include "common/expected.hpp"

namespace troupe::engine::cuda {

// Number of CUDA devices visible to this process; 0 when there is no driver or no device.
[[nodiscard]] int device_count();

// A short description of device `index` ("NVIDIA H200, 139.8 GiB, sm_90"), or an error.
[[nodiscard]] expected<std::string> describe_device(int index);

}  // namespace troupe::engine::cuda
