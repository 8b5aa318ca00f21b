// Splitting decode attention along the KV length (attention_split.hpp, used by the CUDA kernels):
// every position lands in exactly one split, in order, none shorter than the minimum unless it is
// the last; and the split count fills the device without splitting short contexts.
#include <gtest/gtest.h>

#include "engine/kernels/attention_split.hpp"

namespace troupe::engine {
namespace {

TEST(attention_split, every_position_is_in_exactly_one_split_in_order) {
  for (int32_t splits = 1; splits <= attention_max_splits; ++splits) {
    for (int32_t len : {1, 2, 127, 128, 129, 255, 256, 1000, 4096, 4097, 32768, 131071}) {
      int32_t next = 0, nonempty = 0;
      for (int32_t s = 0; s < splits; ++s) {
        const split_range r = split_of(len, splits, s);
        ASSERT_LE(r.begin, r.end);
        if (r.begin == r.end) continue;
        ASSERT_EQ(r.begin, next) << "len " << len << " splits " << splits << " split " << s;
        if (r.end < len) EXPECT_GE(r.end - r.begin, attention_min_split);
        next = r.end;
        ++nonempty;
      }
      EXPECT_EQ(next, len) << "len " << len << " splits " << splits;
      EXPECT_GE(nonempty, 1);
      EXPECT_FALSE(split_of(len, splits, 0).begin == split_of(len, splits, 0).end) << "split 0 is never empty";
    }
  }
}

TEST(attention_split, split_counts_fill_the_device_only_for_long_contexts) {
  const int64_t sms = 132;  // an H100/H200
  EXPECT_EQ(decode_splits(1, 32, 100, sms), 1) << "a short context is not split";
  EXPECT_EQ(decode_splits(1, 32, 128, sms), 1);
  EXPECT_EQ(decode_splits(64, 32, 8192, sms), 1) << "2,048 blocks already fill the device";
  const int32_t one = decode_splits(1, 32, 8192, sms);
  EXPECT_GT(one, 1);
  EXPECT_LE(one, attention_max_splits);
  EXPECT_GE(int64_t(one) * 32, sms) << "batch 1 fills the multiprocessors";
  EXPECT_LE(decode_splits(1, 32, 300, sms), 512 / attention_min_split) << "no split that could only be empty";
  // Rounded to a power of two: the count does not change with every new position.
  EXPECT_EQ(decode_splits(2, 32, 3000, sms), decode_splits(2, 32, 4096, sms));
  for (int64_t n = 1; n <= 256; n *= 2)
    for (int64_t len = 1; len <= 200000; len = len * 3 + 1) {
      const int32_t s = decode_splits(n, 32, len, sms);
      EXPECT_GE(s, 1);
      EXPECT_LE(s, attention_max_splits);
    }
}

}  // namespace
}  // namespace troupe::engine
