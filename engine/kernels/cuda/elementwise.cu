// Element-wise kernels: grid-stride loops, one thread per element (per row element for the row
// copies, with one block row per output row).
#include "engine/kernels/cuda/elementwise.hpp"

namespace troupe::engine::cuda {

namespace {

constexpr int threads = 256;

unsigned blocks_for(int64_t n) {
  const int64_t b = (n + threads - 1) / threads;
  return unsigned(b < 65535 * 8 ? b : 65535 * 8);  // grid-stride covers the rest
}

__global__ void silu_mul_kernel(float* __restrict__ gate, const float* __restrict__ up, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float g = gate[i];
    gate[i] = g / (1.0f + __expf(-g)) * up[i];
  }
}

__global__ void add_kernel(float* __restrict__ acc, const float* __restrict__ x, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    acc[i] += x[i];
}

__global__ void add_bias_kernel(float* __restrict__ y, const float* __restrict__ bias, int64_t n, int64_t cols) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    y[i] += bias[i % cols];
}

__global__ void f32_to_bf16_kernel(const float* __restrict__ x, __nv_bfloat16* __restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    out[i] = __float2bfloat16_rn(x[i]);
}

// One block per output row.
__global__ void embed_kernel(const __nv_bfloat16* __restrict__ table, const int32_t* __restrict__ ids, int64_t cols,
                             float* __restrict__ out) {
  const __nv_bfloat16* src = table + int64_t(ids[blockIdx.x]) * cols;
  float* dst = out + int64_t(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = __bfloat162float(src[c]);
}

__global__ void gather_rows_kernel(const float* __restrict__ x, const int32_t* __restrict__ rows, int64_t cols,
                                   float* __restrict__ out) {
  const float* src = x + int64_t(rows[blockIdx.x]) * cols;
  float* dst = out + int64_t(blockIdx.x) * cols;
  for (int64_t c = threadIdx.x; c < cols; c += blockDim.x) dst[c] = src[c];
}

}  // namespace

cudaError_t launch_silu_mul(float* gate, const float* up, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  silu_mul_kernel<<<blocks_for(n), threads, 0, stream>>>(gate, up, n);
  return cudaGetLastError();
}

cudaError_t launch_add(float* acc, const float* x, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  add_kernel<<<blocks_for(n), threads, 0, stream>>>(acc, x, n);
  return cudaGetLastError();
}

cudaError_t launch_add_bias(float* y, const float* bias, int64_t rows, int64_t cols, cudaStream_t stream) {
  const int64_t n = rows * cols;
  if (n <= 0) return cudaSuccess;
  add_bias_kernel<<<blocks_for(n), threads, 0, stream>>>(y, bias, n, cols);
  return cudaGetLastError();
}

cudaError_t launch_f32_to_bf16(const float* x, __nv_bfloat16* out, int64_t n, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  f32_to_bf16_kernel<<<blocks_for(n), threads, 0, stream>>>(x, out, n);
  return cudaGetLastError();
}

cudaError_t launch_embed(const __nv_bfloat16* table, const int32_t* ids, int64_t n, int64_t cols, float* out,
                         cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  embed_kernel<<<unsigned(n), threads, 0, stream>>>(table, ids, cols, out);
  return cudaGetLastError();
}

cudaError_t launch_gather_rows(const float* x, const int32_t* rows, int64_t n, int64_t cols, float* out,
                               cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  gather_rows_kernel<<<unsigned(n), threads, 0, stream>>>(x, rows, cols, out);
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
