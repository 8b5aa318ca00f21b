// Rotary embedding: one block per token, one thread per (head, pair).
#include "engine/kernels/cuda/rope.hpp"

namespace troupe::engine::cuda {

namespace {

__global__ void rope_kernel(float* __restrict__ x, int64_t n_heads, int64_t head_dim, const int32_t* __restrict__ pos,
                            const float* __restrict__ inv_freq, bool interleaved) {
  const int64_t half = head_dim / 2;
  float* row = x + int64_t(blockIdx.x) * n_heads * head_dim;
  const double p = double(pos[blockIdx.x]);
  for (int64_t j = threadIdx.x; j < n_heads * half; j += blockDim.x) {
    const int64_t h = j / half, i = j % half;
    double s, c;
    sincos(p * double(inv_freq[i]), &s, &c);
    float* v = row + h * head_dim;
    const int64_t a = interleaved ? 2 * i : i;
    const int64_t b = interleaved ? 2 * i + 1 : i + half;
    const float x0 = v[a], x1 = v[b];
    v[a] = x0 * float(c) - x1 * float(s);
    v[b] = x0 * float(s) + x1 * float(c);
  }
}

}  // namespace

cudaError_t launch_rope(float* x, int64_t n, int64_t n_heads, int64_t head_dim, const int32_t* pos,
                        const float* inv_freq, bool interleaved, cudaStream_t stream) {
  if (n <= 0) return cudaSuccess;
  rope_kernel<<<unsigned(n), 256, 0, stream>>>(x, n_heads, head_dim, pos, inv_freq, interleaved);
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
