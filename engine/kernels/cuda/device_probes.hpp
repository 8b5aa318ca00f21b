// What one GPU can do, measured in the same run as a benchmark so that its figures come as
// fractions: HBM bandwidth, the cuBLASLt bf16 GEMM rate, and the memory in use.
#pragma once

#include <cstdint>

#include "common/expected.hpp"

namespace troupe::engine::cuda {

// Device-to-device copy bandwidth in GB/s, counting bytes read and written (a 2 GiB copy, the best
// of 5 after a warm-up): the denominator of a decode roofline.
[[nodiscard]] expected<double> measure_device_bandwidth(int device);

// TFLOP/s of y[m, n] = x[m, k] w[n, k]^T in bf16 with f32 accumulation and f32 output, the
// backend's own GEMM configuration (median of 10 after 3 warm-ups, random data).
[[nodiscard]] expected<double> measure_bf16_gemm_tflops(int device, int64_t m, int64_t n, int64_t k);

// Bytes of device memory in use (total minus free), by every process on the device.
[[nodiscard]] expected<int64_t> device_memory_used(int device);

}  // namespace troupe::engine::cuda
