// Tests of the response cache's memory tier: eviction of the least recently used by bytes, expiry by
// TTL on an injected clock, entries too large for the bound, and exact matching of the key bytes.
#include "cache_actor/lru_cache.hpp"

#include <gtest/gtest.h>

#include "tests/cache_actor/cache_test_data.hpp"

namespace troupe::cache {
namespace {

using namespace std::chrono_literals;
using test::entry_of;
using test::key_of;

struct fake_clock {
  std::chrono::steady_clock::time_point now{};
  clock_fn fn() {
    return [this]() { return now; };
  }
};

TEST(lru_cache, evicts_the_least_recently_used_by_bytes_and_a_get_refreshes) {
  const auto a = key_of("aaaa"), b = key_of("bbbb"), c = key_of("cccc"), d = key_of("dddd");
  const int64_t one = entry_size(a, entry_of(10));
  lru_cache cache(3 * one, 0s);
  EXPECT_TRUE(cache.put(a, entry_of(10)));
  EXPECT_TRUE(cache.put(b, entry_of(10)));
  EXPECT_TRUE(cache.put(c, entry_of(10)));
  EXPECT_EQ(cache.entries(), 3);
  EXPECT_EQ(cache.bytes(), 3 * one);
  ASSERT_TRUE(cache.get(a));  // a is now the most recent: b is the oldest unused
  EXPECT_TRUE(cache.put(d, entry_of(10)));
  EXPECT_FALSE(cache.get(b));
  EXPECT_TRUE(cache.get(a));
  EXPECT_TRUE(cache.get(c));
  EXPECT_TRUE(cache.get(d));
  EXPECT_EQ(cache.counters().evictions_bytes, 1);
  EXPECT_EQ(cache.counters().hits, 4);
  EXPECT_EQ(cache.counters().misses, 1);
  EXPECT_EQ(cache.bytes(), 3 * one);
}

TEST(lru_cache, a_large_entry_evicts_as_many_as_it_needs) {
  const int64_t small = entry_size(key_of("k0"), entry_of(1));
  lru_cache cache(10 * small, 0s);
  for (int i = 0; i < 10; ++i) ASSERT_TRUE(cache.put(key_of("k" + std::to_string(i)), entry_of(1)));
  EXPECT_EQ(cache.entries(), 10);
  // Needs room for about three small ones more than a small one: the three oldest go.
  const auto big = key_of("kb");
  const int64_t base = small - 4;  // the same entry without its token
  const auto big_entry = entry_of(int((7 * small / 2 - base) / 4));
  ASSERT_LE(entry_size(big, big_entry), 4 * small);
  ASSERT_GT(entry_size(big, big_entry), 3 * small);
  ASSERT_TRUE(cache.put(big, big_entry));
  EXPECT_EQ(cache.counters().evictions_bytes, 4);
  for (int i = 0; i < 4; ++i) EXPECT_FALSE(cache.get(key_of("k" + std::to_string(i)))) << i;
  for (int i = 4; i < 10; ++i) EXPECT_TRUE(cache.get(key_of("k" + std::to_string(i)))) << i;
  EXPECT_LE(cache.bytes(), cache.max_bytes());
}

TEST(lru_cache, expired_entries_are_misses_and_removed) {
  fake_clock clock;
  lru_cache cache(1 << 20, 10s, clock.fn());
  const auto a = key_of("a");
  ASSERT_TRUE(cache.put(a, entry_of(3)));
  clock.now += 9s;
  EXPECT_TRUE(cache.get(a));  // a get does not extend the life
  clock.now += 1s;
  EXPECT_FALSE(cache.get(a));
  EXPECT_EQ(cache.entries(), 0);
  EXPECT_EQ(cache.bytes(), 0);
  EXPECT_EQ(cache.counters().evictions_ttl, 1);
  EXPECT_EQ(cache.counters().misses, 1);
  EXPECT_EQ(cache.counters().hits, 1);
}

TEST(lru_cache, ttl_zero_never_expires) {
  fake_clock clock;
  lru_cache cache(1 << 20, 0s, clock.fn());
  ASSERT_TRUE(cache.put(key_of("a"), entry_of(3)));
  clock.now += std::chrono::hours(24 * 365);
  EXPECT_TRUE(cache.get(key_of("a")));
}

TEST(lru_cache, a_ttl_override_is_capped_by_the_cache_ttl) {
  fake_clock clock;
  lru_cache cache(1 << 20, 10s, clock.fn());
  ASSERT_TRUE(cache.put(key_of("short"), entry_of(1), 2s));
  ASSERT_TRUE(cache.put(key_of("long"), entry_of(1), 100s));
  EXPECT_FALSE(cache.put(key_of("gone"), entry_of(1), 0ms));  // already expired
  clock.now += 3s;
  EXPECT_FALSE(cache.get(key_of("short")));
  EXPECT_TRUE(cache.get(key_of("long")));
  clock.now += 7s;
  EXPECT_FALSE(cache.get(key_of("long")));
  EXPECT_FALSE(cache.get(key_of("gone")));
}

TEST(lru_cache, evicting_an_expired_entry_counts_as_ttl) {
  fake_clock clock;
  const int64_t one = entry_size(key_of("a"), entry_of(4));
  lru_cache cache(2 * one, 5s, clock.fn());
  ASSERT_TRUE(cache.put(key_of("a"), entry_of(4)));
  ASSERT_TRUE(cache.put(key_of("b"), entry_of(4)));
  clock.now += 6s;
  ASSERT_TRUE(cache.put(key_of("c"), entry_of(4)));
  EXPECT_EQ(cache.counters().evictions_ttl, 1);
  EXPECT_EQ(cache.counters().evictions_bytes, 0);
}

TEST(lru_cache, an_entry_larger_than_the_bound_is_not_stored) {
  const auto k = key_of("k");
  lru_cache cache(entry_size(k, entry_of(100)), 0s);
  ASSERT_TRUE(cache.put(k, entry_of(100)));  // exactly the bound fits
  ASSERT_TRUE(cache.put(key_of("other"), entry_of(1)));
  EXPECT_EQ(cache.entries(), 1);             // the first made room
  EXPECT_FALSE(cache.put(k, entry_of(101)));
  EXPECT_EQ(cache.counters().rejected, 1);
  EXPECT_FALSE(cache.get(k));                // nor is an older value under the key kept
  EXPECT_TRUE(cache.get(key_of("other")));   // the others are untouched
  EXPECT_EQ(cache.bytes(), entry_size(key_of("other"), entry_of(1)));
}

TEST(lru_cache, keys_match_by_exact_bytes_even_with_equal_hashes) {
  lru_cache cache(1 << 20, 0s);
  ASSERT_TRUE(cache.put(key_of("prompt A", 42), entry_of(2, 100)));
  ASSERT_TRUE(cache.put(key_of("prompt B", 42), entry_of(2, 200)));
  EXPECT_EQ(cache.entries(), 2);
  auto a = cache.get(key_of("prompt A", 42));
  auto b = cache.get(key_of("prompt B", 42));
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->samples[0].tokens[0], 100);
  EXPECT_EQ(b->samples[0].tokens[0], 200);
  EXPECT_FALSE(cache.get(key_of("prompt C", 42)));
  EXPECT_FALSE(cache.get(key_of("prompt A", 43)));  // the hash is part of the key too
  EXPECT_FALSE(cache.get(key_of("prompt ", 42)));
}

TEST(lru_cache, replacing_a_key_keeps_the_byte_count_exact) {
  lru_cache cache(1 << 20, 0s);
  const auto k = key_of("k");
  ASSERT_TRUE(cache.put(k, entry_of(10)));
  ASSERT_TRUE(cache.put(k, entry_of(50, 7, true)));
  EXPECT_EQ(cache.entries(), 1);
  EXPECT_EQ(cache.bytes(), entry_size(k, entry_of(50, 7, true)));
  auto e = cache.get(k);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->samples[0].tokens.size(), 50u);
}

TEST(lru_cache, entry_size_counts_every_part) {
  const auto k = key_of(std::string(100, 'x'));
  cluster::cache_entry e = entry_of(10, 1, true);  // 10 logprobs with 2 alternatives each
  e.samples[0].error.message = "boom";
  const int64_t expected = 100 + entry_overhead_bytes + int64_t(sizeof(cluster::token_chunk)) + 10 * 4 + 4 +
                           10 * (int64_t(sizeof(cluster::token_logprob)) + 2 * 4 + 2 * 4);
  EXPECT_EQ(entry_size(k, e), expected);
}

}  // namespace
}  // namespace troupe::cache
