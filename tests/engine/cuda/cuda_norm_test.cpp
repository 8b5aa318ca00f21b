// The CUDA RMSNorm against the CPU kernel; skips with a message when no device is present.
#include <gtest/gtest.h>
#include <cuda_runtime_api.h>

#include <random>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"
#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/kernels/cuda/norm.hpp"

namespace troupe::engine {
namespace {

TEST(cuda_rms_norm, matches_cpu) {
  if (cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device found: the CUDA kernels are compiled, not run";
  const int64_t n = 7, dim = 2048;
  std::mt19937 rng(3);
  std::normal_distribution<float> d(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n * dim)), g(static_cast<size_t>(dim)), want(x.size()), got(x.size());
  for (auto& v : x) v = d(rng);
  for (auto& v : g) v = 1.0f + 0.1f * d(rng);
  cpu::rms_norm(x.data(), g.data(), n, dim, 1e-5f, want.data());
  float *dx, *dg, *dout;
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dx), x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dg), g.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMalloc(reinterpret_cast<void**>(&dout), x.size() * 4), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dx, x.data(), x.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(dg, g.data(), g.size() * 4, cudaMemcpyHostToDevice), cudaSuccess);
  ASSERT_EQ(cuda::launch_rms_norm(dx, dg, n, dim, 1e-5f, dout, nullptr), cudaSuccess);
  ASSERT_EQ(cudaMemcpy(got.data(), dout, got.size() * 4, cudaMemcpyDeviceToHost), cudaSuccess);
  cudaFree(dx);
  cudaFree(dg);
  cudaFree(dout);
  for (size_t i = 0; i < got.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-5f * (1.0f + std::abs(want[i]))) << i;
}

}  // namespace
}  // namespace troupe::engine
