// The NCCL communicator on device memory: tp = 1 collectives, 2 ranks when two devices exist, and
// a rank that never joins fails within the timeout. Skips with a message when there is no device.
#include <gtest/gtest.h>

#if TROUPE_HAVE_CUDA

#include <cuda_runtime_api.h>

#include <chrono>
#include <thread>
#include <vector>

#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/parallel/nccl_communicator.hpp"

namespace troupe::engine::parallel {
namespace {

using namespace std::chrono_literals;

constexpr const char* no_device = "no CUDA device found: the NCCL communicator is compiled, not run";

TEST(nccl_communicator, without_a_device_it_is_a_clear_error) {
  if (cuda::device_count() > 0) GTEST_SKIP() << "a device is present; see the device tests";
  nccl_unique_id id{};
  nccl_options o;
  auto comm = make_nccl_communicator(o, id);
  ASSERT_FALSE(comm);
  EXPECT_NE(comm.message().find("nccl rank 0 of 1"), std::string::npos) << comm.message();
}

TEST(nccl_communicator, the_leader_makes_unique_ids_without_a_device) {
  auto a = make_nccl_unique_id();
  auto b = make_nccl_unique_id();
  ASSERT_TRUE(a) << a.message();
  ASSERT_TRUE(b) << b.message();
  EXPECT_NE(*a, nccl_unique_id{});
  EXPECT_NE(*a, *b);
}

// Device memory holding `host`; freed by the caller.
float* upload(const std::vector<float>& host) {
  float* d = nullptr;
  if (cudaMalloc(reinterpret_cast<void**>(&d), host.size() * sizeof(float)) != cudaSuccess) return nullptr;
  if (cudaMemcpy(d, host.data(), host.size() * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) return nullptr;
  return d;
}

std::vector<float> download(const float* d, size_t n) {
  std::vector<float> host(n);
  (void)cudaMemcpy(host.data(), d, n * sizeof(float), cudaMemcpyDeviceToHost);
  return host;
}

TEST(nccl_communicator, tp_one_collectives_on_device_memory) {
  if (cuda::device_count() == 0) GTEST_SKIP() << no_device;
  auto id = make_nccl_unique_id();
  ASSERT_TRUE(id) << id.message();
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreate(&stream), cudaSuccess);
  nccl_options o;
  o.stream = stream;
  o.timeout = 10s;
  auto comm = make_nccl_communicator(o, *id);
  ASSERT_TRUE(comm) << comm.message();
  std::vector<float> host(4096);
  for (size_t i = 0; i < host.size(); ++i) host[i] = float(i % 17) - 8.0f;
  float* d = upload(host);
  ASSERT_NE(d, nullptr);
  ASSERT_TRUE((*comm)->all_reduce_sum(std::span<float>(d, host.size())));
  ASSERT_TRUE((*comm)->broadcast(std::as_writable_bytes(std::span<float>(d, host.size())), 0));
  auto synced = (*comm)->synchronize();
  ASSERT_TRUE(synced) << synced.message();
  EXPECT_EQ(download(d, host.size()), host);
  auto b = (*comm)->barrier();
  EXPECT_TRUE(b) << b.message();
  EXPECT_FALSE((*comm)->broadcast(std::as_writable_bytes(std::span<float>(d, 1)), 1));
  comm->reset();
  cudaFree(d);
  cudaStreamDestroy(stream);
}

TEST(nccl_communicator, two_ranks_on_two_devices_sum_exactly) {
  if (cuda::device_count() == 0) GTEST_SKIP() << no_device;
  if (cuda::device_count() < 2) GTEST_SKIP() << "one CUDA device: NCCL needs a device per rank";
  auto id = make_nccl_unique_id();
  ASSERT_TRUE(id) << id.message();
  std::vector<std::string> reports(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r) {
    ranks.emplace_back([r, &id, &reports] {
      (void)cudaSetDevice(r);
      nccl_options o;
      o.rank = r;
      o.size = 2;
      o.device = r;
      o.timeout = 20s;
      auto comm = make_nccl_communicator(o, *id);
      if (!comm) {
        reports[size_t(r)] = comm.message();
        return;
      }
      std::vector<float> host(1 << 20, float(r + 1));
      float* d = upload(host);
      auto done = (*comm)->all_reduce_sum(std::span<float>(d, host.size()));
      if (done) done = (*comm)->synchronize();
      if (!done) {
        reports[size_t(r)] = done.message();
      } else {
        for (float v : download(d, host.size()))
          if (v != 3.0f) {
            reports[size_t(r)] = "sum is " + std::to_string(v);
            break;
          }
      }
      cudaFree(d);
    });
  }
  for (auto& t : ranks) t.join();
  EXPECT_EQ(reports[0], "");
  EXPECT_EQ(reports[1], "");
}

TEST(nccl_communicator, a_rank_that_never_joins_fails_within_the_timeout) {
  if (cuda::device_count() == 0) GTEST_SKIP() << no_device;
  auto id = make_nccl_unique_id();
  ASSERT_TRUE(id) << id.message();
  nccl_options o;
  o.size = 2;  // rank 1 never comes
  o.timeout = 2s;
  const auto start = std::chrono::steady_clock::now();
  auto comm = make_nccl_communicator(o, *id);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(comm);
  EXPECT_LT(took, 8.0);
  EXPECT_NE(comm.message().find("nccl rank 0 of 2"), std::string::npos) << comm.message();
}

}  // namespace
}  // namespace troupe::engine::parallel

#else

TEST(nccl_communicator, built_without_cuda) { GTEST_SKIP() << "built without CUDA: no NCCL communicator"; }

#endif
