// The block pool on its own: allocation order, ref counts, the LRU free queue, eviction of cached
// blocks from its head, and a cache hit pulling a block out of the middle of the queue.
#include <gtest/gtest.h>

#include <vector>

#include "engine/kv_cache/block_pool.hpp"

namespace troupe::engine {
namespace {

using ids = std::vector<int32_t>;

std::vector<int32_t> toks(int32_t first, int32_t n) {
  std::vector<int32_t> t;
  for (int32_t i = 0; i < n; ++i) t.push_back(first + i);
  return t;
}

TEST(block_pool, allocates_from_the_head_in_id_order) {
  block_pool pool(4, 16);
  EXPECT_EQ(pool.free_queue(), (ids{0, 1, 2, 3}));
  auto a = pool.allocate(3);
  ASSERT_TRUE(a);
  EXPECT_EQ(*a, (ids{0, 1, 2}));
  EXPECT_EQ(pool.num_free(), 1);
  for (int32_t id : *a) EXPECT_EQ(pool.ref_count(id), 1);
  EXPECT_FALSE(pool.allocate(2)) << "only one block is free";
  EXPECT_EQ(pool.num_free(), 1) << "a failed allocation takes nothing";
}

TEST(block_pool, freed_blocks_join_the_tail) {
  block_pool pool(4, 16);
  auto a = *pool.allocate(4);
  pool.unref(2);
  pool.unref(0);
  pool.unref(3);
  EXPECT_EQ(pool.free_queue(), (ids{2, 0, 3}));
  EXPECT_EQ(*pool.allocate(1), (ids{2}));
}

TEST(block_pool, ref_counts_keep_shared_blocks_out_of_the_queue) {
  block_pool pool(2, 16);
  auto a = *pool.allocate(1);
  pool.ref(a[0]);
  EXPECT_EQ(pool.ref_count(a[0]), 2);
  pool.unref(a[0]);
  EXPECT_FALSE(pool.is_free(a[0]));
  pool.unref(a[0]);
  EXPECT_TRUE(pool.is_free(a[0]));
  EXPECT_EQ(pool.ref_count(a[0]), 0);
}

TEST(block_pool, cached_blocks_stay_cached_until_evicted_from_the_head) {
  block_pool pool(3, 4);
  auto a = *pool.allocate(3);
  const auto t0 = toks(0, 4), t1 = toks(10, 4), t2 = toks(20, 4);
  ASSERT_TRUE(pool.cache(a[0], 100, 7, 0, t0, nullptr));
  ASSERT_TRUE(pool.cache(a[1], 101, 7, 0, t1, nullptr));
  ASSERT_TRUE(pool.cache(a[2], 102, 7, 0, t2, nullptr));
  pool.unref(a[1]);
  pool.unref(a[0]);
  pool.unref(a[2]);  // queue: 1, 0, 2 -- all still cached
  EXPECT_EQ(pool.num_cached(), 3);
  EXPECT_TRUE(pool.lookup(101, 7, 0, t1, nullptr));
  auto b = *pool.allocate(1);
  EXPECT_EQ(b, (ids{1})) << "least recently freed first";
  EXPECT_FALSE(pool.is_cached(1));
  EXPECT_FALSE(pool.lookup(101, 7, 0, t1, nullptr)) << "eviction removes the map entry";
  EXPECT_TRUE(pool.lookup(100, 7, 0, t0, nullptr));
  EXPECT_EQ(pool.evictions(), 1);
  EXPECT_EQ(pool.num_cached(), 2);
}

TEST(block_pool, a_cache_hit_pulls_the_block_out_of_the_middle_of_the_queue) {
  block_pool pool(4, 4);
  auto a = *pool.allocate(4);
  const auto t = toks(5, 4);
  ASSERT_TRUE(pool.cache(a[2], 55, 7, 0, t, nullptr));
  for (int32_t id : a) pool.unref(id);
  EXPECT_EQ(pool.free_queue(), (ids{0, 1, 2, 3}));
  int32_t hit = -1;
  ASSERT_TRUE(pool.lookup(55, 7, 0, t, &hit));
  EXPECT_EQ(hit, 2);
  pool.ref(hit);
  EXPECT_EQ(pool.free_queue(), (ids{0, 1, 3}));
  EXPECT_EQ(pool.ref_count(2), 1);
  EXPECT_TRUE(pool.is_cached(2)) << "a reused cached block keeps its entry";
  EXPECT_EQ(*pool.allocate(3), (ids{0, 1, 3}));
  EXPECT_TRUE(pool.is_cached(2));
}

TEST(block_pool, a_hash_collision_is_caught_by_the_token_compare) {
  block_pool pool(2, 4);
  auto a = *pool.allocate(2);
  const auto t0 = toks(0, 4), t1 = toks(1, 4);
  ASSERT_TRUE(pool.cache(a[0], 9, 7, 0, t0, nullptr));
  EXPECT_FALSE(pool.lookup(9, 7, 0, t1, nullptr)) << "same hash, other tokens: a miss";
  std::optional<block_key> existing;
  EXPECT_FALSE(pool.cache(a[1], 9, 7, 0, t1, &existing)) << "the hash is taken";
  EXPECT_FALSE(existing) << "and the holder is not the same content";
  EXPECT_FALSE(pool.lookup(9, 8, 0, t0, nullptr)) << "same tokens, other revision root";
  EXPECT_FALSE(pool.lookup(9, 7, 3, t0, nullptr)) << "same tokens, other parent";
  EXPECT_TRUE(pool.lookup(9, 7, 0, t0, nullptr));
}

}  // namespace
}  // namespace troupe::engine
