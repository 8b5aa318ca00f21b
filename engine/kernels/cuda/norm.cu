// RMSNorm on the device: one block per row, a block-wide sum of squares in f32.
#include "engine/kernels/cuda/norm.hpp"

namespace troupe::engine::cuda {

namespace {

constexpr int block_threads = 256;

// The block's sum of `v` (every thread gets it): a warp reduction, then one value per warp
// through shared memory.
__device__ float block_sum(float v) {
  __shared__ float warp_sums[block_threads / 32];
  for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
  if ((threadIdx.x & 31) == 0) warp_sums[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < blockDim.x / 32 ? warp_sums[threadIdx.x] : 0.0f;
    for (int off = 16; off > 0; off >>= 1) v += __shfl_xor_sync(0xffffffffu, v, off);
    if (threadIdx.x == 0) warp_sums[0] = v;
  }
  __syncthreads();
  return warp_sums[0];
}

// x and out may alias (each thread reads an element before writing it), hence no __restrict__ on them.
__global__ void rms_norm_kernel(const float* x, const float* __restrict__ gamma, int64_t dim, float eps, float* out) {
  const float* row = x + blockIdx.x * dim;
  float* dst = out + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) ss += row[i] * row[i];
  const float inv = rsqrtf(block_sum(ss) / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = row[i] * inv * gamma[i];
}

// One block per row: the add and the sum of squares in one pass, the scaling in a second (x is
// fully read before the block's sum completes, so out may alias it).
__global__ void add_rms_norm_kernel(float* __restrict__ acc, const float* x, const float* __restrict__ gamma,
                                    int64_t dim, float eps, float* out) {
  float* row = acc + blockIdx.x * dim;
  const float* add = x + blockIdx.x * dim;
  float* dst = out + blockIdx.x * dim;
  float ss = 0.0f;
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) {
    const float v = row[i] + add[i];
    row[i] = v;
    ss += v * v;
  }
  const float inv = rsqrtf(block_sum(ss) / float(dim) + eps);
  for (int64_t i = threadIdx.x; i < dim; i += blockDim.x) dst[i] = row[i] * inv * gamma[i];
}

}  // namespace

cudaError_t launch_add_rms_norm(float* acc, const float* x, const float* gamma, int64_t n, int64_t dim, float eps,
                                float* out, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  add_rms_norm_kernel<<<dim3(unsigned(n)), dim3(block_threads), 0, stream>>>(acc, x, gamma, dim, eps, out);
  return cudaGetLastError();
}

cudaError_t launch_rms_norm(const float* x, const float* gamma, int64_t n, int64_t dim, float eps, float* out,
                            cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  rms_norm_kernel<<<dim3(unsigned(n)), dim3(block_threads), 0, stream>>>(x, gamma, dim, eps, out);
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
