// Host launchers for the element-wise and row-copy kernels of the forward pass; kernels live in
// elementwise.cu. All pointers are device pointers; launches are asynchronous on `stream` and
// return the launch status.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <cstdint>

namespace troupe::engine::cuda {

// gate[i] = silu(gate[i]) * up[i], f32, `n` elements.
[[nodiscard]] cudaError_t launch_silu_mul(float* gate, const float* up, int64_t n, cudaStream_t stream);

// acc[i] += x[i], f32, `n` elements.
[[nodiscard]] cudaError_t launch_add(float* acc, const float* x, int64_t n, cudaStream_t stream);

// y[r, c] += bias[c] for `rows` rows of `cols`.
[[nodiscard]] cudaError_t launch_add_bias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream);

// out[i] = bf16(x[i]) (round to nearest even), `n` elements: a GEMM's activation operand.
[[nodiscard]] cudaError_t launch_f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t stream);

// out[i, :] = f32(table[ids[i], :]): the embedding gather, `n` ids into a [*, cols] bf16 table.
[[nodiscard]] cudaError_t launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t n, int64_t cols,
                                       float* out, cudaStream_t stream);

// out[i, :] = x[rows[i], :], f32, `n` rows of `cols`.
[[nodiscard]] cudaError_t launch_gather_rows(const float* x, const int32_t* rows, int64_t n, int64_t cols, float* out,
                                             cudaStream_t stream);

}  // namespace troupe::engine::cuda
