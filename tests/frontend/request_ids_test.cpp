// Request ids (frontend/core/request_ids.hpp): positive, distinct, and unrelated to one another, so
// that an id a worker sees says nothing about the next one.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>
#include <vector>

#include "frontend/core/request_ids.hpp"

namespace troupe::frontend {
namespace {

TEST(request_ids, are_positive_distinct_and_not_a_sequence) {
  request_ids ids;
  std::vector<int64_t> seen(100000);
  for (auto& id : seen) id = ids.next();
  int64_t near_previous = 0;  // within 2^32 of the id before: a counter's mark (chance per pair 2^-31)
  for (size_t i = 0; i < seen.size(); ++i) {
    ASSERT_GT(seen[i], 0);
    if (i > 0 && std::llabs(seen[i] - seen[i - 1]) < (int64_t(1) << 32)) ++near_previous;
  }
  EXPECT_EQ(near_previous, 0);
  // The top bit below the sign is set in about half of them: the whole 63 bits are used.
  const auto high = std::count_if(seen.begin(), seen.end(), [](int64_t v) { return v >> 62; });
  EXPECT_GT(high, 45000);
  EXPECT_LT(high, 55000);
  std::sort(seen.begin(), seen.end());
  EXPECT_EQ(std::adjacent_find(seen.begin(), seen.end()), seen.end());
}

TEST(request_ids, two_threads_draw_distinct_ids) {
  request_ids ids;
  std::vector<int64_t> a(20000), b(20000);
  std::thread t([&a, &ids] {
    for (auto& v : a) v = ids.next();
  });
  for (auto& v : b) v = ids.next();
  t.join();
  a.insert(a.end(), b.begin(), b.end());
  std::sort(a.begin(), a.end());
  EXPECT_EQ(std::adjacent_find(a.begin(), a.end()), a.end());
}

}  // namespace
}  // namespace troupe::frontend
