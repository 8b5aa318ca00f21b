// Sampling on the device (see sampling.hpp): one block per row. The top-k and top-p cuts are found
// by bisecting on a threshold (each probe counts, or sums, the row's values above it with a block
// reduction) instead of sorting the vocabulary; the draw walks the kept tokens in id order with a
// block-wide prefix sum.
#include "engine/kernels/cuda/sampling.hpp"

#include <cfloat>

namespace troupe::engine::cuda {

namespace {

constexpr int threads = 1024;
constexpr int bisections = 40;  // float thresholds: 40 halvings reach the spacing of adjacent values

__device__ float block_reduce(float v, bool take_max) {
  __shared__ float part[threads / 32];
  __shared__ float result;
  for (int off = 16; off > 0; off >>= 1) {
    const float o = __shfl_xor_sync(0xffffffffu, v, off);
    v = take_max ? fmaxf(v, o) : v + o;
  }
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = v;
  __syncthreads();
  if (threadIdx.x < 32) {
    v = threadIdx.x < blockDim.x / 32 ? part[threadIdx.x] : (take_max ? -FLT_MAX : 0.0f);
    for (int off = 16; off > 0; off >>= 1) {
      const float o = __shfl_xor_sync(0xffffffffu, v, off);
      v = take_max ? fmaxf(v, o) : v + o;
    }
    if (threadIdx.x == 0) result = v;
  }
  __syncthreads();
  const float out = result;
  __syncthreads();  // `result` and `part` are reused by the next call
  return out;
}

// The lowest index holding the row's maximum.
__device__ int32_t block_argmax(const float* row, int64_t vocab) {
  float best = -FLT_MAX;
  int32_t at = INT32_MAX;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    if (row[i] > best) {  // strictly: a thread's earlier (lower) index wins a tie
      best = row[i];
      at = int32_t(i);
    }
  }
  __shared__ float vals[threads];
  __shared__ int32_t idx[threads];
  vals[threadIdx.x] = best;
  idx[threadIdx.x] = at;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride >>= 1) {
    if (threadIdx.x < stride) {
      const float v = vals[threadIdx.x + stride];
      const int32_t j = idx[threadIdx.x + stride];
      if (v > vals[threadIdx.x] || (v == vals[threadIdx.x] && j < idx[threadIdx.x])) {
        vals[threadIdx.x] = v;
        idx[threadIdx.x] = j;
      }
    }
    __syncthreads();
  }
  return idx[0];
}


// The penalties, in place: one block per row, a thread per entry (a row's tokens are distinct).
__global__ void penalty_kernel(float* __restrict__ logits, int64_t vocab, const sample_params* __restrict__ params,
                               const penalty_entry* __restrict__ entries) {
  float* row = logits + int64_t(blockIdx.x) * vocab;
  const sample_params p = params[blockIdx.x];
  for (int32_t i = threadIdx.x; i < p.penalty_count; i += blockDim.x) {
    const penalty_entry e = entries[p.penalty_begin + i];
    if (e.token >= 0 && e.token < vocab)
      row[e.token] = penalized_logit(row[e.token], p.repetition_penalty, p.presence_penalty, p.frequency_penalty,
                                     e.generated);
  }
}

__global__ void sample_kernel(const float* __restrict__ logits, int64_t vocab, const sample_params* __restrict__ params,
                              int32_t* __restrict__ out) {
  const float* row = logits + int64_t(blockIdx.x) * vocab;
  const sample_params p = params[blockIdx.x];
  if (p.temperature <= 0.0f) {
    const int32_t id = block_argmax(row, vocab);
    if (threadIdx.x == 0) out[blockIdx.x] = id;
    return;
  }
  float local_max = -FLT_MAX, local_min = FLT_MAX, local_bad = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) {
    local_max = fmaxf(local_max, row[i]);
    local_min = fminf(local_min, row[i]);
    local_bad += (isnan(row[i]) || row[i] == INFINITY) ? 1.0f : 0.0f;
  }
  const float hi = block_reduce(local_max, true);
  const float lo = -block_reduce(-local_min, true);
  // No distribution to draw from (NaN, +inf, or every logit -inf): the most likely token, as the
  // host sampler does.
  if (block_reduce(local_bad, false) > 0.0f || !isfinite(hi)) {
    const int32_t id = block_argmax(row, vocab);
    if (threadIdx.x == 0) out[blockIdx.x] = id;
    return;
  }
  const float inv_t = 1.0f / p.temperature;
  // weight(i) = exp((logit - max) / T): the unnormalized probability.
  auto weight = [row, hi, inv_t](int64_t i) { return __expf((row[i] - hi) * inv_t); };

  // top-k: the largest threshold t with count(logit >= t) >= k (ties at the k-th value are kept).
  float cut = lo;
  if (p.top_k > 0 && p.top_k < vocab) {
    float a = lo, b = hi;  // count(>= a) >= k holds, count(>= b) >= k may not
    for (int it = 0; it < bisections; ++it) {
      const float mid = 0.5f * (a + b);
      float n = 0.0f;
      for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) n += row[i] >= mid ? 1.0f : 0.0f;
      if (block_reduce(n, false) >= float(p.top_k)) a = mid; else b = mid;
    }
    cut = a;
  }
  // top-p: the largest threshold t >= cut whose kept mass holds top_p of the mass above cut.
  float mass_above_cut = 0.0f;
  for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) mass_above_cut += row[i] >= cut ? weight(i) : 0.0f;
  mass_above_cut = block_reduce(mass_above_cut, false);
  if (p.top_p < 1.0f) {
    float a = cut, b = hi;
    const float want = p.top_p * mass_above_cut;
    for (int it = 0; it < bisections; ++it) {
      const float mid = 0.5f * (a + b);
      float m = 0.0f;
      for (int64_t i = threadIdx.x; i < vocab; i += blockDim.x) m += row[i] >= mid ? weight(i) : 0.0f;
      if (block_reduce(m, false) >= want) a = mid; else b = mid;
    }
    cut = a;
  }
  // min-p: weight(i) >= min_p (the best token's weight is 1), as a threshold on the logit.
  if (p.min_p > 0.0f) cut = fmaxf(cut, hi + p.temperature * logf(p.min_p));
  // The draw: each thread owns a contiguous span of ids; a prefix sum over the spans' kept mass
  // finds the span holding the target, which its thread walks.
  const int64_t span = (vocab + blockDim.x - 1) / blockDim.x;
  const int64_t begin = threadIdx.x * span, end = min(begin + span, vocab);
  float mine = 0.0f;
  for (int64_t i = begin; i < end; ++i) mine += row[i] >= cut ? weight(i) : 0.0f;
  __shared__ float prefix[threads];
  prefix[threadIdx.x] = mine;
  __syncthreads();
  for (int stride = 1; stride < blockDim.x; stride <<= 1) {  // inclusive Hillis-Steele scan
    const float add = threadIdx.x >= stride ? prefix[threadIdx.x - stride] : 0.0f;
    __syncthreads();
    prefix[threadIdx.x] += add;
    __syncthreads();
  }
  const float total = prefix[blockDim.x - 1];
  const float target = float(engine::counter_uniform(p.seed, p.counter)) * total;
  const float before = threadIdx.x > 0 ? prefix[threadIdx.x - 1] : 0.0f;
  __shared__ int32_t chosen;
  if (threadIdx.x == 0) chosen = -1;
  __syncthreads();
  if (mine > 0.0f && target >= before && target < before + mine) {
    float run = before;
    int32_t pick = -1;
    for (int64_t i = begin; i < end; ++i) {
      if (row[i] < cut) continue;
      pick = int32_t(i);
      run += weight(i);
      if (run > target) break;
    }
    chosen = pick;  // exactly one span holds a target below the total
  }
  __syncthreads();
  int32_t pick = chosen;  // the same for every thread of the block
  // Rounding can leave the target at or past the total: take the most likely token then.
  if (pick < 0) pick = block_argmax(row, vocab);
  if (threadIdx.x == 0) out[blockIdx.x] = pick;
}

}  // namespace

cudaError_t launch_sample(float* logits, int64_t rows, int64_t vocab, const sample_params* params,
                          const penalty_entry* penalties, int32_t* out, cudaStream_t stream) {
  if (rows <= 0) return cudaSuccess;
  if (vocab <= 0 || vocab > INT32_MAX) return cudaErrorInvalidValue;
  if (penalties != nullptr) {
    penalty_kernel<<<unsigned(rows), 256, 0, stream>>>(logits, vocab, params, penalties);
    if (const cudaError_t e = cudaGetLastError(); e != cudaSuccess) return e;
  }
  sample_kernel<<<unsigned(rows), threads, 0, stream>>>(logits, vocab, params, out);
  return cudaGetLastError();
}

}  // namespace troupe::engine::cuda
