// Tests for the kernels' thread pool: every index covered once, chunk shapes, caller takes part,
// wake-up after the workers went to sleep, and shutdown.
#include "engine/kernels/cpu/thread_pool.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

namespace troupe::engine::cpu {
namespace {

class ThreadPoolSizes : public ::testing::TestWithParam<int> {};

TEST_P(ThreadPoolSizes, CoversEveryIndexOnceOverManyCalls) {
  thread_pool pool(GetParam());
  ASSERT_EQ(pool.size(), GetParam());
  std::mt19937 rng(7);
  std::vector<std::atomic<int>> hits(5000);
  for (int call = 0; call < 3000; ++call) {
    const int64_t n = std::uniform_int_distribution<int64_t>(0, 4999)(rng);
    const int64_t grain = std::uniform_int_distribution<int64_t>(1, 64)(rng);
    for (auto& h : hits) h.store(0, std::memory_order_relaxed);
    std::atomic<int64_t> sum{0};
    std::atomic<bool> shape_ok{true};
    pool.parallel_for(n, grain, [&](int thread, int64_t b, int64_t e) {
      if (thread < 0 || thread >= pool.size() || b >= e || b % grain != 0) shape_ok = false;
      if (e != n && (e - b) % grain != 0) shape_ok = false;
      int64_t local = 0;
      for (int64_t i = b; i < e; ++i) {
        hits[size_t(i)].fetch_add(1, std::memory_order_relaxed);
        local += i;
      }
      sum += local;
    });
    ASSERT_TRUE(shape_ok) << "call " << call << " n " << n << " grain " << grain;
    ASSERT_EQ(sum.load(), n * (n - 1) / 2) << "call " << call;
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "index " << i;
  }
}

TEST_P(ThreadPoolSizes, CallerRunsChunkZeroAndChunksAreContiguous) {
  thread_pool pool(GetParam());
  const auto caller = std::this_thread::get_id();
  std::mutex m;
  std::vector<std::pair<int64_t, int64_t>> chunks(size_t(pool.size()), {-1, -1});
  bool chunk0_on_caller = false;
  pool.parallel_for(1000, 10, [&](int thread, int64_t b, int64_t e) {
    std::lock_guard lock(m);
    chunks[size_t(thread)] = {b, e};
    if (thread == 0) chunk0_on_caller = std::this_thread::get_id() == caller;
  });
  EXPECT_TRUE(chunk0_on_caller);
  int64_t next = 0;
  for (const auto& [b, e] : chunks) {
    if (b < 0) continue;
    EXPECT_EQ(b, next);
    next = e;
  }
  EXPECT_EQ(next, 1000);
}

TEST_P(ThreadPoolSizes, WakesWorkersAfterTheySleep) {
  thread_pool pool(GetParam());
  for (int round = 0; round < 3; ++round) {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));  // past the spin budget
    std::atomic<int> threads_seen{0};
    std::atomic<int64_t> count{0};
    pool.parallel_for(pool.size() * 100, 100, [&](int, int64_t b, int64_t e) {
      threads_seen.fetch_add(1);
      count += e - b;
    });
    EXPECT_EQ(threads_seen.load(), pool.size());
    EXPECT_EQ(count.load(), pool.size() * 100);
  }
}

INSTANTIATE_TEST_SUITE_P(Sizes, ThreadPoolSizes, ::testing::Values(1, 2, 3));

TEST(ThreadPool, DefaultSizeIsHardwareConcurrency) {
  thread_pool pool(0);
  EXPECT_EQ(pool.size(), int(std::max(1u, std::thread::hardware_concurrency())));
}

TEST(ThreadPool, DestroysWhileWorkersSleepOrSpin) {
  for (int i = 0; i < 20; ++i) {
    thread_pool pool(3);
    std::atomic<int64_t> count{0};
    pool.parallel_for(300, 1, [&](int, int64_t b, int64_t e) { count += e - b; });
    EXPECT_EQ(count.load(), 300);
    if (i % 2 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

}  // namespace
}  // namespace troupe::engine::cpu
