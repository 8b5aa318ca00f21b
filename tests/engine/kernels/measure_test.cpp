// The machine probes: measure_read_bandwidth reads only inside the regions it is given (any
// alignment and size), and reports a positive rate when there is something to read.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cmath>
#include <cstddef>
#include <span>
#include <vector>

#include "engine/kernels/cpu/kernels.hpp"

namespace troupe::engine::cpu {
namespace {

TEST(MeasureRead, StaysInsideUnalignedRegionsThatEndAtAGuardPage) {
  const size_t page = size_t(sysconf(_SC_PAGESIZE));
  // Two readable pages, then one that faults on any access.
  void* map = mmap(nullptr, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(map, MAP_FAILED);
  auto* base = static_cast<std::byte*>(map);
  ASSERT_EQ(mprotect(base + 2 * page, page, PROT_NONE), 0);
  for (size_t i = 0; i < 2 * page; ++i) base[i] = std::byte(i & 0x7f);
  thread_pool pool(2);
  const std::span<const std::byte> regions[] = {{base + 5, 2 * page - 5}, {base + 700, 100}};
  const double gb_s = measure_read_bandwidth(pool, regions, 2);
  EXPECT_GT(gb_s, 0.0);
  EXPECT_TRUE(std::isfinite(gb_s));
  munmap(map, 3 * page);
}

TEST(MeasureRead, NothingToReadIsZero) {
  thread_pool pool(2);
  EXPECT_EQ(measure_read_bandwidth(pool, {}), 0.0);
  std::vector<std::byte> small(600);  // under one aligned 512-byte piece once its start is aligned
  const std::span<const std::byte> regions[] = {{small.data() + 100, 500}};
  EXPECT_EQ(measure_read_bandwidth(pool, regions), 0.0);
}

TEST(MeasureRead, ManyMegabytesReadAtAPlausibleRate) {
  std::vector<float> data(size_t(24) << 20, 1.0f);  // 96 MiB, over the L3
  thread_pool pool(2);
  const std::span<const std::byte> regions[] = {std::as_bytes(std::span(data)).subspan(3)};
  const double gb_s = measure_read_bandwidth(pool, regions, 2);
  EXPECT_GT(gb_s, 0.5);    // slower than any machine this runs on
  EXPECT_LT(gb_s, 5000.0);  // faster than any memory: the timing or the byte count is wrong
}

}  // namespace
}  // namespace troupe::engine::cpu
