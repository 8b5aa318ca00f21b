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

// Flash-style prefill: one block (4 warps) per (query tile, head). Warp w owns queries w, w + 4,
// ... of the tile; lane l owns dims l, l + 32, ... of each of them. Keys and values come through
// shared memory in chunks of 32 rows (padded by one float against bank conflicts); a lane scores
// key l of the chunk against a query, and the warp then folds the chunk into that query's online
// softmax.
template <int PER_LANE>
__global__ void tiled_attention_kernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                       const float* __restrict__ v_cache, paged_batch_args b, int64_t n_heads,
                                       int64_t n_kv_heads, float* __restrict__ out) {
  constexpr int head_dim = PER_LANE * 32;
  constexpr int chunk = 32;
  constexpr int stride = head_dim + 1;
  constexpr int per_warp = int(attention_tile_tokens) / warps;
  __shared__ float ks[chunk * stride], vs[chunk * stride];
  __shared__ float qs[attention_tile_tokens * stride];
  const int64_t h = blockIdx.y;
  const int32_t first = b.tiles[2 * blockIdx.x], count = b.tiles[2 * blockIdx.x + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int64_t kvh = h / (n_heads / n_kv_heads);
  const int32_t seq = b.token_seq[first];
  const int32_t last_pos = b.pos[first + count - 1];  // tokens of a tile are consecutive positions
  const float scale = rsqrtf(float(head_dim));
  for (int i = threadIdx.x; i < count * head_dim; i += blockDim.x) {
    const int t = i / head_dim, d = i % head_dim;
    qs[t * stride + d] = q[(int64_t(first + t) * n_heads + h) * head_dim + d] * scale;
  }
  float m[per_warp], l[per_warp], acc[per_warp][PER_LANE];
#pragma unroll
  for (int j = 0; j < per_warp; ++j) {
    m[j] = -FLT_MAX;
    l[j] = 0.0f;
    for (int i = 0; i < PER_LANE; ++i) acc[j][i] = 0.0f;
  }
  for (int32_t base = 0; base <= last_pos; base += chunk) {
    __syncthreads();  // the previous chunk is consumed (and, the first time, qs is written)
    for (int i = threadIdx.x; i < chunk * head_dim; i += blockDim.x) {
      const int r = i / head_dim, d = i % head_dim;
      const int32_t p = base + r;
      float kv = 0.0f, vv = 0.0f;
      if (p <= last_pos) {
        const int64_t at = cache_row(b, seq, p) * kv_dim + kvh * head_dim + d;
        kv = k_cache[at];
        vv = v_cache[at];
      }
      ks[r * stride + d] = kv;
      vs[r * stride + d] = vv;
    }
    __syncthreads();
  #pragma unroll
  for (int j = 0; j < per_warp; ++j) {
      const int t = warp + j * warps;
      if (t >= count) continue;
      const int32_t my_pos = b.pos[first + t];
      if (base > my_pos) continue;  // every key of this chunk is in this query's future
      const int32_t key = base + lane;
      float s = -FLT_MAX;
      if (key <= my_pos) {
        s = 0.0f;
        for (int d = 0; d < head_dim; ++d) s += qs[t * stride + d] * ks[lane * stride + d];
      }
      float chunk_max = s;
      for (int off = 16; off > 0; off >>= 1) chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, off));
      const float m_new = fmaxf(m[j], chunk_max);
      const float w = key <= my_pos ? __expf(s - m_new) : 0.0f;
      float w_sum = w;
      for (int off = 16; off > 0; off >>= 1) w_sum += __shfl_xor_sync(0xffffffffu, w_sum, off);
      const float correction = __expf(m[j] - m_new);
      l[j] = l[j] * correction + w_sum;
      for (int i = 0; i < PER_LANE; ++i) acc[j][i] *= correction;
      for (int r = 0; r < chunk; ++r) {
        const float wr = __shfl_sync(0xffffffffu, w, r);
        if (wr == 0.0f) continue;  // masked (or negligible) key: the same for every lane
        for (int i = 0; i < PER_LANE; ++i) acc[j][i] += wr * vs[r * stride + lane + 32 * i];
      }
      m[j] = m_new;
    }
  }
#pragma unroll
  for (int j = 0; j < per_warp; ++j) {
    const int t = warp + j * warps;
    if (t >= count) continue;
    float* orow = out + (int64_t(first + t) * n_heads + h) * head_dim;
    for (int i = 0; i < PER_LANE; ++i) orow[lane + 32 * i] = acc[j][i] / l[j];
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
  // Tiles of several tokens (prefill) with head_dim <= 128 go to the flash-style kernel.
  if (b.n_tiles > 0 && b.n_tiles < b.n && head_dim <= 128) {
    const dim3 tiled_grid(unsigned(b.n_tiles), unsigned(n_heads));
    switch (head_dim / 32) {
      case 1: tiled_attention_kernel<1><<<tiled_grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out); break;
      case 2: tiled_attention_kernel<2><<<tiled_grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out); break;
      case 3: tiled_attention_kernel<3><<<tiled_grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out); break;
      case 4: tiled_attention_kernel<4><<<tiled_grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out); break;
      default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
  }
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
