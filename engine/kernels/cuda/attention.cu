// Paged attention kernels (see attention.hpp).
#include "engine/kernels/cuda/attention.hpp"

#include <cfloat>

namespace troupe::engine::cuda {

namespace {

constexpr int warps = 4;
constexpr int max_per_lane = 8;  // head_dim <= 256

__device__ int64_t cache_row(const paged_batch_args& b, int32_t seq, int32_t p) {
  const int32_t block = b.tables[b.table_offsets[seq] + p / int32_t(b.block_size)];
  return int64_t(block) * b.block_size + p % b.block_size;
}

// One block per token; threads copy its kv_dim features of K and V.
__global__ void write_paged_kv_kernel(float* __restrict__ k_cache, float* __restrict__ v_cache, paged_batch_args b,
                                      const float* __restrict__ k, const float* __restrict__ v, int64_t kv_dim) {
  const int64_t t = blockIdx.x;
  const int64_t row = cache_row(b, b.token_seq[t], b.pos[t]);
  for (int64_t i = threadIdx.x; i < kv_dim; i += blockDim.x) {
    k_cache[row * kv_dim + i] = k[t * kv_dim + i];
    v_cache[row * kv_dim + i] = v[t * kv_dim + i];
  }
}

template <int PER_LANE>
__global__ void paged_attention_kernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                       const float* __restrict__ v_cache, paged_batch_args b, int64_t n_heads,
                                       int64_t n_kv_heads, float* __restrict__ out) {
  constexpr int head_dim = PER_LANE * 32;
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int64_t kvh = h / (n_heads / n_kv_heads);
  const int32_t seq = b.token_seq[t], last = b.pos[t];
  const float scale = rsqrtf(float(head_dim));

  float qv[PER_LANE], acc[PER_LANE];
  const float* qrow = q + (t * n_heads + h) * head_dim;
  for (int i = 0; i < PER_LANE; ++i) {
    qv[i] = qrow[lane + 32 * i] * scale;
    acc[i] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  for (int32_t p = warp; p <= last; p += warps) {
    const int64_t base = cache_row(b, seq, p) * kv_dim + kvh * head_dim;
    float s = 0.0f;
    for (int i = 0; i < PER_LANE; ++i) s += qv[i] * k_cache[base + lane + 32 * i];
    for (int off = 16; off > 0; off >>= 1) s += __shfl_xor_sync(0xffffffffu, s, off);
    const float m_new = fmaxf(m, s);
    const float correction = __expf(m - m_new), w = __expf(s - m_new);
    l = l * correction + w;
    for (int i = 0; i < PER_LANE; ++i) acc[i] = acc[i] * correction + w * v_cache[base + lane + 32 * i];
    m = m_new;
  }
  // Merge the warps' partial softmaxes.
  __shared__ float sm[warps], sl[warps], sacc[warps][head_dim];
  if (lane == 0) {
    sm[warp] = m;
    sl[warp] = l;
  }
  for (int i = 0; i < PER_LANE; ++i) sacc[warp][lane + 32 * i] = acc[i];
  __syncthreads();
  float gm = -FLT_MAX;
  for (int w = 0; w < warps; ++w) gm = fmaxf(gm, sm[w]);
  float gl = 0.0f;
  for (int w = 0; w < warps; ++w) gl += sl[w] * __expf(sm[w] - gm);  // a warp with no positions has l = 0
  float* orow = out + (t * n_heads + h) * head_dim;
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < warps; ++w) sum += sacc[w][d] * __expf(sm[w] - gm);
    orow[d] = sum / gl;
  }
}

}  // namespace

cudaError_t launch_write_paged_kv(float* k_cache, float* v_cache, const paged_batch_args& b, const float* k,
                                  const float* v, int64_t kv_dim, cudaStream_t stream) {
  if (b.n <= 0) return cudaSuccess;
  write_paged_kv_kernel<<<unsigned(b.n), 256, 0, stream>>>(k_cache, v_cache, b, k, v, kv_dim);
  return cudaGetLastError();
}

cudaError_t launch_paged_attention(const float* q, const float* k_cache, const float* v_cache,
                                   const paged_batch_args& b, int64_t n_heads, int64_t n_kv_heads, int64_t head_dim,
                                   float* out, cudaStream_t stream) {
  if (b.n <= 0) return cudaSuccess;
  if (head_dim % 32 != 0 || head_dim > 32 * max_per_lane || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    return cudaErrorInvalidValue;
  const dim3 grid(unsigned(b.n), unsigned(n_heads));
  switch (head_dim / 32) {
#define TROUPE_ATTENTION_CASE(P) \
  case P: paged_attention_kernel<P><<<grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out); break;
    TROUPE_ATTENTION_CASE(1)
    TROUPE_ATTENTION_CASE(2)
    TROUPE_ATTENTION_CASE(3)
    TROUPE_ATTENTION_CASE(4)
    TROUPE_ATTENTION_CASE(5)
    TROUPE_ATTENTION_CASE(6)
    TROUPE_ATTENTION_CASE(7)
    TROUPE_ATTENTION_CASE(8)
#undef TROUPE_ATTENTION_CASE
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
