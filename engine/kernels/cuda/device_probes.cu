// The device probes (see device_probes.hpp).
#include "engine/kernels/cuda/device_probes.hpp"

#include "engine/kernels/cuda/cuda_check.hpp"

#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime_api.h>

#include <algorithm>
#include <string>
#include <vector>

namespace troupe::engine::cuda {

namespace {

#define TROUPE_CUDA_TRY(call)                                                            \
  do {                                                                                   \
    if (cudaError_t e_ = (call); e_ != cudaSuccess) return fail(cuda_error(#call, e_));   \
  } while (0)
#define TROUPE_CUBLAS_TRY(call)                                                          \
  do {                                                                                   \
    if (cublasStatus_t s_ = (call); s_ != CUBLAS_STATUS_SUCCESS)                         \
      return fail(cublas_error(#call, int(s_)));                                         \
  } while (0)

// Frees what it holds, whatever path leaves the probe.
struct scope {
  std::vector<void*> buffers;
  cudaEvent_t start = nullptr, stop = nullptr;
  cublasLtHandle_t lt = nullptr;
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~scope() {
    for (void* p : buffers) cudaFree(p);
    if (start) cudaEventDestroy(start);
    if (stop) cudaEventDestroy(stop);
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (op) cublasLtMatmulDescDestroy(op);
    if (lt) cublasLtDestroy(lt);
  }
};

__global__ void fill_kernel(__nv_bfloat16* p, int64_t n, uint32_t seed) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    uint32_t x = uint32_t(i) * 2654435761u ^ seed;
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    p[i] = __float2bfloat16(float(x & 0xffff) / 65536.0f - 0.5f);
  }
}

}  // namespace

expected<double> measure_device_bandwidth(int device) {
  TROUPE_CUDA_TRY(cudaSetDevice(device));
  scope s;
  const size_t bytes = size_t(2) << 30;
  void *src = nullptr, *dst = nullptr;
  TROUPE_CUDA_TRY(cudaMalloc(&src, bytes));
  s.buffers.push_back(src);
  TROUPE_CUDA_TRY(cudaMalloc(&dst, bytes));
  s.buffers.push_back(dst);
  TROUPE_CUDA_TRY(cudaMemset(src, 1, bytes));
  TROUPE_CUDA_TRY(cudaEventCreate(&s.start));
  TROUPE_CUDA_TRY(cudaEventCreate(&s.stop));
  TROUPE_CUDA_TRY(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));  // warm-up
  float best_ms = 1e30f;
  for (int i = 0; i < 5; ++i) {
    TROUPE_CUDA_TRY(cudaEventRecord(s.start));
    TROUPE_CUDA_TRY(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice));
    TROUPE_CUDA_TRY(cudaEventRecord(s.stop));
    TROUPE_CUDA_TRY(cudaEventSynchronize(s.stop));
    float ms = 0;
    TROUPE_CUDA_TRY(cudaEventElapsedTime(&ms, s.start, s.stop));
    best_ms = std::min(best_ms, ms);
  }
  return 2.0 * double(bytes) / (double(best_ms) * 1e-3) / 1e9;
}

expected<double> measure_bf16_gemm_tflops(int device, int64_t m, int64_t n, int64_t k) {
  if (m < 1 || n < 1 || k < 1) return fail("GEMM probe: sizes must be positive");
  TROUPE_CUDA_TRY(cudaSetDevice(device));
  scope s;
  void *x = nullptr, *w = nullptr, *y = nullptr, *ws = nullptr;
  const size_t ws_bytes = size_t(32) << 20;
  TROUPE_CUDA_TRY(cudaMalloc(&x, size_t(m * k) * 2));
  s.buffers.push_back(x);
  TROUPE_CUDA_TRY(cudaMalloc(&w, size_t(n * k) * 2));
  s.buffers.push_back(w);
  TROUPE_CUDA_TRY(cudaMalloc(&y, size_t(m * n) * 4));
  s.buffers.push_back(y);
  TROUPE_CUDA_TRY(cudaMalloc(&ws, ws_bytes));
  s.buffers.push_back(ws);
  fill_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(x), m * k, 1u);
  fill_kernel<<<1024, 256>>>(static_cast<__nv_bfloat16*>(w), n * k, 2u);
  TROUPE_CUDA_TRY(cudaGetLastError());
  TROUPE_CUBLAS_TRY(cublasLtCreate(&s.lt));
  TROUPE_CUBLAS_TRY(cublasLtMatmulDescCreate(&s.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t transa = CUBLAS_OP_T, transb = CUBLAS_OP_N;
  TROUPE_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSA, &transa, sizeof transa));
  TROUPE_CUBLAS_TRY(cublasLtMatmulDescSetAttribute(s.op, CUBLASLT_MATMUL_DESC_TRANSB, &transb, sizeof transb));
  // Column-major: D[n, m] = W^T-as-stored (k x n, transposed) times X (k x m), as the backend does.
  TROUPE_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&s.a, CUDA_R_16BF, uint64_t(k), uint64_t(n), k));
  TROUPE_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&s.b, CUDA_R_16BF, uint64_t(k), uint64_t(m), k));
  TROUPE_CUBLAS_TRY(cublasLtMatrixLayoutCreate(&s.c, CUDA_R_32F, uint64_t(n), uint64_t(m), n));
  TROUPE_CUBLAS_TRY(cublasLtMatmulPreferenceCreate(&s.pref));
  TROUPE_CUBLAS_TRY(cublasLtMatmulPreferenceSetAttribute(s.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes,
                                                         sizeof ws_bytes));
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  TROUPE_CUBLAS_TRY(cublasLtMatmulAlgoGetHeuristic(s.lt, s.op, s.a, s.b, s.c, s.c, s.pref, 1, &result, &found));
  if (found == 0) return fail("GEMM probe: cuBLASLt has no algorithm for this shape");
  TROUPE_CUDA_TRY(cudaEventCreate(&s.start));
  TROUPE_CUDA_TRY(cudaEventCreate(&s.stop));
  const float alpha = 1.0f, beta = 0.0f;
  std::vector<float> ms_each;
  for (int i = 0; i < 13; ++i) {
    TROUPE_CUDA_TRY(cudaEventRecord(s.start));
    TROUPE_CUBLAS_TRY(cublasLtMatmul(s.lt, s.op, &alpha, w, s.a, x, s.b, &beta, y, s.c, y, s.c, &result.algo, ws,
                                     ws_bytes, nullptr));
    TROUPE_CUDA_TRY(cudaEventRecord(s.stop));
    TROUPE_CUDA_TRY(cudaEventSynchronize(s.stop));
    float ms = 0;
    TROUPE_CUDA_TRY(cudaEventElapsedTime(&ms, s.start, s.stop));
    if (i >= 3) ms_each.push_back(ms);
  }
  std::sort(ms_each.begin(), ms_each.end());
  const double median_s = double(ms_each[ms_each.size() / 2]) * 1e-3;
  return 2.0 * double(m) * double(n) * double(k) / median_s / 1e12;
}

expected<int64_t> device_memory_used(int device) {
  TROUPE_CUDA_TRY(cudaSetDevice(device));
  size_t free = 0, total = 0;
  TROUPE_CUDA_TRY(cudaMemGetInfo(&free, &total));
  return int64_t(total - free);
}

}  // namespace troupe::engine::cuda
