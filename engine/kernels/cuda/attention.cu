// Paged attention kernels (see attention.hpp).
#include "engine/kernels/cuda/attention.hpp"

#include <cuda_bf16.h>
#include <mma.h>

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

// Decode: one block per (token, head, split); its warps take turns over the split's positions,
// each keeping an online softmax, and then merge. With one split the block writes the normalized
// output; with several it writes its unnormalized sum, maximum and mass to `partial` for
// merge_splits_kernel.
// Split `split` of (token t, head h)'s partial softmax in `partial`: [sum (head_dim), max, mass].
// The layout the decode kernels write and merge_splits_kernel reads.
template <class F>  // float or const float
__device__ F* split_record(F* partial, int64_t t, int64_t h, int64_t n_heads, int32_t splits, int32_t split,
                           int64_t head_dim) {
  return partial + ((t * n_heads + h) * splits + split) * (head_dim + 2);
}

template <int PER_LANE>
__global__ void paged_attention_kernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                       const float* __restrict__ v_cache, paged_batch_args b, int64_t n_heads,
                                       int64_t n_kv_heads, int32_t splits, float* __restrict__ out,
                                       float* __restrict__ partial) {
  constexpr int head_dim = PER_LANE * 32;
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const int32_t split = int32_t(blockIdx.z);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int64_t kvh = h / (n_heads / n_kv_heads);
  const int32_t seq = b.token_seq[t];
  const split_range range = split_of(b.pos[t] + 1, splits, split);
  const float scale = rsqrtf(float(head_dim));

  float qv[PER_LANE], acc[PER_LANE];
  const float* qrow = q + (t * n_heads + h) * head_dim;
  for (int i = 0; i < PER_LANE; ++i) {
    qv[i] = qrow[lane + 32 * i] * scale;
    acc[i] = 0.0f;
  }
  float m = -FLT_MAX, l = 0.0f;
  for (int32_t p = range.begin + warp; p < range.end; p += warps) {
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
  // Merge the warps' partial softmaxes (a warp with no positions has l = 0 and adds nothing).
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
  for (int w = 0; w < warps; ++w) gl += sl[w] * __expf(sm[w] - gm);
  if (splits == 1) {
    float* orow = out + (t * n_heads + h) * head_dim;
    for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
      float sum = 0.0f;
      for (int w = 0; w < warps; ++w) sum += sacc[w][d] * __expf(sm[w] - gm);
      orow[d] = sum / gl;
    }
    return;
  }
  // [acc (head_dim), max, mass] of this split; an empty split leaves max = -FLT_MAX, mass = 0.
  float* rec = split_record(partial, t, h, n_heads, splits, split, head_dim);
  for (int d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int w = 0; w < warps; ++w) sum += sacc[w][d] * __expf(sm[w] - gm);
    rec[d] = sum;
  }
  if (threadIdx.x == 0) {
    rec[head_dim] = gm;
    rec[head_dim + 1] = gl;
  }
}

// Decode with grouped-query attention (2 to 16 query heads per KV head, head_dim <= 128): one
// block per (token, KV head, split), a warp per query head of the group. Each chunk of 32
// positions' K and V rows is loaded into shared memory once for the whole group (the per-head
// kernel above reads them once per query head); lane j scores key j of the chunk against the
// warp's query, and the warp folds the chunk into its online softmax. Writes what the per-head
// kernel writes: the output row, or with several splits the split's partial softmax.
template <int PER_LANE>
__global__ void gqa_decode_kernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                  const float* __restrict__ v_cache, paged_batch_args b, int64_t n_heads,
                                  int64_t n_kv_heads, int32_t splits, float* __restrict__ out,
                                  float* __restrict__ partial) {
  constexpr int head_dim = PER_LANE * 32;
  constexpr int chunk = 32;
  constexpr int ld = head_dim + 1;  // odd stride: lane j reading row j hits distinct banks
  __shared__ float ks[chunk * ld], vs[chunk * ld], qs[gqa_max_group][head_dim];
  const int64_t t = blockIdx.x, kvh = blockIdx.y;
  const int32_t split = int32_t(blockIdx.z);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t group = n_heads / n_kv_heads;
  const int64_t h = kvh * group + warp;
  const int64_t kv_dim = n_kv_heads * head_dim;
  const int32_t seq = b.token_seq[t];
  const split_range range = split_of(b.pos[t] + 1, splits, split);
  const float scale = rsqrtf(float(head_dim));
  const float* qrow = q + (t * n_heads + h) * head_dim;
  for (int d = lane; d < head_dim; d += 32) qs[warp][d] = qrow[d] * scale;
  float acc[PER_LANE];
  for (int i = 0; i < PER_LANE; ++i) acc[i] = 0.0f;
  float m = -FLT_MAX, l = 0.0f;
  for (int32_t base = range.begin; base < range.end; base += chunk) {
    const int cnt = range.end - base < chunk ? range.end - base : chunk;
    __syncthreads();  // the previous chunk is consumed (and, the first time, qs is written)
    for (int i = threadIdx.x; i < cnt * head_dim; i += blockDim.x) {
      const int r = i / head_dim, d = i % head_dim;
      const int64_t at = cache_row(b, seq, base + r) * kv_dim + kvh * head_dim + d;
      ks[r * ld + d] = k_cache[at];
      vs[r * ld + d] = v_cache[at];
    }
    __syncthreads();
    float s = -FLT_MAX;
    if (lane < cnt) {
      s = 0.0f;
      for (int d = 0; d < head_dim; ++d) s += qs[warp][d] * ks[lane * ld + d];
    }
    float chunk_max = s;
    for (int off = 16; off > 0; off >>= 1) chunk_max = fmaxf(chunk_max, __shfl_xor_sync(0xffffffffu, chunk_max, off));
    const float m_new = fmaxf(m, chunk_max);
    const float w = lane < cnt ? __expf(s - m_new) : 0.0f;
    float w_sum = w;
    for (int off = 16; off > 0; off >>= 1) w_sum += __shfl_xor_sync(0xffffffffu, w_sum, off);
    const float correction = __expf(m - m_new);
    l = l * correction + w_sum;
    for (int i = 0; i < PER_LANE; ++i) acc[i] *= correction;
    for (int r = 0; r < cnt; ++r) {
      const float wr = __shfl_sync(0xffffffffu, w, r);
      for (int i = 0; i < PER_LANE; ++i) acc[i] += wr * vs[r * ld + lane + 32 * i];
    }
    m = m_new;
  }
  if (splits == 1) {
    float* orow = out + (t * n_heads + h) * head_dim;
    for (int i = 0; i < PER_LANE; ++i) orow[lane + 32 * i] = acc[i] / l;
    return;
  }
  float* rec = split_record(partial, t, h, n_heads, splits, split, head_dim);
  for (int i = 0; i < PER_LANE; ++i) rec[lane + 32 * i] = acc[i];
  if (lane == 0) {
    rec[head_dim] = m;
    rec[head_dim + 1] = l;
  }
}

// The splits of one (token, head) into its output row: rescale each split's sum by exp(its max -
// the overall max) and divide by the rescaled total mass. Split 0 is never empty, so the mass is
// positive. One block per (token, head), a thread per dimension.
__global__ void merge_splits_kernel(const float* __restrict__ partial, int64_t n_heads, int64_t head_dim,
                                    int32_t splits, float* __restrict__ out) {
  const int64_t t = blockIdx.x, h = blockIdx.y;
  const float* recs = split_record(partial, t, h, n_heads, splits, 0, head_dim);
  float gm = -FLT_MAX;
  for (int32_t s = 0; s < splits; ++s) gm = fmaxf(gm, recs[s * (head_dim + 2) + head_dim]);
  float gl = 0.0f;
  for (int32_t s = 0; s < splits; ++s) {
    const float l = recs[s * (head_dim + 2) + head_dim + 1];
    if (l > 0.0f) gl += l * __expf(recs[s * (head_dim + 2) + head_dim] - gm);
  }
  float* orow = out + (t * n_heads + h) * head_dim;
  for (int64_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
    float sum = 0.0f;
    for (int32_t s = 0; s < splits; ++s) {
      const float* rec = recs + s * (head_dim + 2);
      if (rec[head_dim + 1] > 0.0f) sum += rec[d] * __expf(rec[head_dim] - gm);
    }
    orow[d] = sum / gl;
  }
}

// Flash-style prefill on tensor cores: one block (4 warps) per (query tile of up to 64 tokens,
// head). Warp w owns queries 16w .. 16w+15 of the tile. Per chunk of 32 keys (loaded once into
// shared memory as bf16 for all four warps), a warp computes its scores S = Q K^T [16 x 32] with
// bf16 WMMA (f32 accumulate), folds them into its rows' online softmax in f32 (lane pair 2r, 2r+1
// owns row r, 16 keys each), rescales its output rows, and adds P V [16 x head_dim] with WMMA on
// top of them. Masked keys (a query's future, or past the tile's last position) weigh 0.
constexpr int tc_tile = 64;
constexpr int tc_chunk = 32;

template <int D>
struct tc_shared {
  static constexpr int qk_ld = D + 8;        // bf16 rows of Q, K, V (16-byte padding against bank conflicts)
  static constexpr int s_ld = tc_chunk + 4;  // f32 scores
  static constexpr int p_ld = tc_chunk + 8;  // bf16 weights
  static constexpr int o_ld = D + 4;         // f32 output rows
  alignas(32) __nv_bfloat16 q[tc_tile * qk_ld];
  alignas(32) __nv_bfloat16 k[tc_chunk * qk_ld];
  alignas(32) __nv_bfloat16 v[tc_chunk * qk_ld];
  alignas(32) float s[warps][16 * s_ld];
  alignas(32) __nv_bfloat16 p[warps][16 * p_ld];
  alignas(32) float o[warps][16 * o_ld];
  float m[tc_tile], l[tc_tile], corr[tc_tile];
};

template <int D>
__global__ void __launch_bounds__(warps * 32)
    tc_prefill_attention_kernel(const float* __restrict__ q, const float* __restrict__ k_cache,
                                const float* __restrict__ v_cache, paged_batch_args b, int64_t n_heads,
                                int64_t n_kv_heads, float* __restrict__ out) {
  using namespace nvcuda;
  using sh = tc_shared<D>;
  extern __shared__ __align__(128) unsigned char raw[];
  sh& S = *reinterpret_cast<sh*>(raw);
  const int64_t h = blockIdx.y;
  const int32_t first = b.tiles[2 * blockIdx.x], count = b.tiles[2 * blockIdx.x + 1];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int64_t kv_dim = n_kv_heads * D;
  const int64_t kvh = h / (n_heads / n_kv_heads);
  const int32_t seq = b.token_seq[first];
  const int32_t last_pos = b.pos[first + count - 1];  // tokens of a tile are consecutive positions
  const float scale = rsqrtf(float(D));

  for (int i = threadIdx.x; i < tc_tile * D; i += blockDim.x) {
    const int r = i / D, d = i % D;
    const float x = r < count ? q[(int64_t(first + r) * n_heads + h) * D + d] * scale : 0.0f;
    S.q[r * sh::qk_ld + d] = __float2bfloat16(x);
  }
  for (int i = threadIdx.x; i < tc_tile; i += blockDim.x) {
    S.m[i] = -FLT_MAX;
    S.l[i] = 0.0f;
  }
  for (int i = lane; i < 16 * sh::o_ld; i += 32) S.o[warp][i] = 0.0f;

  const int row0 = warp * 16;
  const int warp_rows = count - row0 < 16 ? count - row0 : 16;  // <= 0: this warp has no queries
  const int32_t warp_last = warp_rows > 0 ? b.pos[first + row0 + warp_rows - 1] : -1;
  const int r = lane >> 1, half = lane & 1;  // softmax: this lane's row and half of the chunk
  const int qrow = row0 + r;
  const int32_t my_pos = qrow < count ? b.pos[first + qrow] : -1;

  for (int32_t base = 0; base <= last_pos; base += tc_chunk) {
    __syncthreads();  // the previous chunk is consumed (and, the first time, Q and m/l are written)
    for (int i = threadIdx.x; i < tc_chunk * D; i += blockDim.x) {
      const int kr = i / D, d = i % D;
      const int32_t p = base + kr;
      float kx = 0.0f, vx = 0.0f;
      if (p <= last_pos) {
        const int64_t at = cache_row(b, seq, p) * kv_dim + kvh * D + d;
        kx = k_cache[at];
        vx = v_cache[at];
      }
      S.k[kr * sh::qk_ld + d] = __float2bfloat16(kx);
      S.v[kr * sh::qk_ld + d] = __float2bfloat16(vx);
    }
    __syncthreads();
    if (base > warp_last) continue;  // every key of the chunk is in the future of this warp's queries

    wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> a;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> kt;
    wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> vb;
    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
    // S = Q K^T for this warp's 16 queries and the chunk's 32 keys.
    for (int j = 0; j < tc_chunk / 16; ++j) {
      wmma::fill_fragment(acc, 0.0f);
      for (int kk = 0; kk < D / 16; ++kk) {
        wmma::load_matrix_sync(a, S.q + row0 * sh::qk_ld + kk * 16, sh::qk_ld);
        wmma::load_matrix_sync(kt, S.k + j * 16 * sh::qk_ld + kk * 16, sh::qk_ld);
        wmma::mma_sync(acc, a, kt, acc);
      }
      wmma::store_matrix_sync(S.s[warp] + j * 16, acc, sh::s_ld, wmma::mem_row_major);
    }
    __syncwarp();
    // Online softmax of row r over this half of the chunk; the lane pair combines by shuffles.
    const float* srow = S.s[warp] + r * sh::s_ld + half * 16;
    float mx = -FLT_MAX;
    for (int c = 0; c < 16; ++c)
      if (base + half * 16 + c <= my_pos) mx = fmaxf(mx, srow[c]);
    mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
    const float m_old = qrow < tc_tile ? S.m[qrow] : -FLT_MAX;
    const float m_new = fmaxf(m_old, mx);
    float sum = 0.0f;
    for (int c = 0; c < 16; ++c) {
      const float w = base + half * 16 + c <= my_pos ? __expf(srow[c] - m_new) : 0.0f;
      S.p[warp][r * sh::p_ld + half * 16 + c] = __float2bfloat16(w);
      sum += w;
    }
    sum += __shfl_xor_sync(0xffffffffu, sum, 1);
    const float corr = __expf(m_old - m_new);  // 0 when m_old is -FLT_MAX and m_new is not; 1 when both are
    __syncwarp();
    if (half == 0) {
      S.m[qrow] = m_new;
      S.l[qrow] = S.l[qrow] * corr + sum;
    }
    for (int c = half * (D / 2); c < (half + 1) * (D / 2); ++c) S.o[warp][r * sh::o_ld + c] *= corr;
    __syncwarp();
    // O += P V.
    for (int dd = 0; dd < D / 16; ++dd) {
      wmma::load_matrix_sync(acc, S.o[warp] + dd * 16, sh::o_ld, wmma::mem_row_major);
      for (int kk = 0; kk < tc_chunk / 16; ++kk) {
        wmma::load_matrix_sync(a, S.p[warp] + kk * 16, sh::p_ld);
        wmma::load_matrix_sync(vb, S.v + kk * 16 * sh::qk_ld + dd * 16, sh::qk_ld);
        wmma::mma_sync(acc, a, vb, acc);
      }
      wmma::store_matrix_sync(S.o[warp] + dd * 16, acc, sh::o_ld, wmma::mem_row_major);
    }
    __syncwarp();
  }
  __syncwarp();
  for (int rr = 0; rr < warp_rows; ++rr) {
    const float inv = 1.0f / S.l[row0 + rr];
    float* orow = out + (int64_t(first + row0 + rr) * n_heads + h) * D;
    for (int d = lane; d < D; d += 32) orow[d] = S.o[warp][rr * sh::o_ld + d] * inv;
  }
}

template <int D>
cudaError_t launch_tc_prefill(const float* q, const float* k_cache, const float* v_cache, const paged_batch_args& b,
                              int64_t n_heads, int64_t n_kv_heads, float* out, cudaStream_t stream) {
  const size_t bytes = sizeof(tc_shared<D>);
  if (const cudaError_t e = cudaFuncSetAttribute(tc_prefill_attention_kernel<D>,
                                                 cudaFuncAttributeMaxDynamicSharedMemorySize, int(bytes));
      e != cudaSuccess)
    return e;
  const dim3 grid(unsigned(b.n_tiles), unsigned(n_heads));
  tc_prefill_attention_kernel<D><<<grid, warps * 32, bytes, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out);
  return cudaGetLastError();
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
                                   int32_t splits, float* scratch, float* out, cudaStream_t stream) {
  if (b.n <= 0) return cudaSuccess;
  if (head_dim % 32 != 0 || head_dim > 32 * max_per_lane || n_kv_heads <= 0 || n_heads % n_kv_heads != 0)
    return cudaErrorInvalidValue;
  if (!is_decode_launch(b, head_dim)) {
    switch (head_dim) {
      case 32: return launch_tc_prefill<32>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out, stream);
      case 64: return launch_tc_prefill<64>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out, stream);
      case 96: return launch_tc_prefill<96>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out, stream);
      case 128: return launch_tc_prefill<128>(q, k_cache, v_cache, b, n_heads, n_kv_heads, out, stream);
      default: return cudaErrorInvalidValue;
    }
  }
  if (splits < 1 || splits > attention_max_splits || (splits > 1 && scratch == nullptr)) return cudaErrorInvalidValue;
  if (uses_gqa_decode(n_heads, n_kv_heads, head_dim)) {
    const int64_t group = n_heads / n_kv_heads;
    const dim3 gqa_grid(unsigned(b.n), unsigned(n_kv_heads), unsigned(splits));
    const unsigned threads = unsigned(group * 32);
    switch (head_dim / 32) {
      case 1: gqa_decode_kernel<1><<<gqa_grid, threads, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, splits, out, scratch); break;
      case 2: gqa_decode_kernel<2><<<gqa_grid, threads, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, splits, out, scratch); break;
      case 3: gqa_decode_kernel<3><<<gqa_grid, threads, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, splits, out, scratch); break;
      case 4: gqa_decode_kernel<4><<<gqa_grid, threads, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, splits, out, scratch); break;
      default: return cudaErrorInvalidValue;
    }
  } else {
  const dim3 grid(unsigned(b.n), unsigned(n_heads), unsigned(splits));
  switch (head_dim / 32) {
#define TROUPE_ATTENTION_CASE(P)                                                                                  \
  case P:                                                                                                        \
    paged_attention_kernel<P><<<grid, warps * 32, 0, stream>>>(q, k_cache, v_cache, b, n_heads, n_kv_heads, splits, \
                                                               out, scratch);                                     \
    break;
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
  }
  if (splits > 1) {
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
    merge_splits_kernel<<<dim3(unsigned(b.n), unsigned(n_heads)), unsigned(head_dim), 0, stream>>>(
        scratch, n_heads, head_dim, splits, out);
  }
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
