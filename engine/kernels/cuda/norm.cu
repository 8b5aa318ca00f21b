// RMSNorm on the device: one block per row, a block-wide sum of squares in f32.
#include "engine/kernels/cuda/norm.hpp"

namespace troupe::engine::cuda {

namespace {

constexpr int block_threads = 256;

__global__ void rms_norm_kernel(const float* __restrict__ x, const float* __restrict__ gamma, int64_t dim,
                                float eps, float* __restrict__ out) {
  const float* row = x + blockIdx.x * dim;
  float* dst = out + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
  // Warp reduction, then one value per warp through shared memory.
  for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
  __shared__ float warp_sums[block_threads / 32];
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    ss = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) ss += __shfl_xor_sync(0xffffffffu, ss, off);
    if (threadIdx.x == 0) warp_sums[0] = ss;
  }
  __syncthreads();
  const float inv = rsqrtf(warp_sums[0] / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = row[i] * inv * gamma[i];
}

}  // namespace

cudaError_t launch_rms_norm(const float* x, const float* gamma, int64_t n, int64_t dim, float eps, float* out,
                            cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  rms_norm_kernel<<<dim3(unsigned(n)), dim3(block_threads), 0, stream>>>(x, gamma, dim, eps, out);
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
