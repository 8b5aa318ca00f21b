// Tests of the cache actor in memory only, through a real actor system: lookup, store and stats, the
// Prometheus series, keys that must not be cached, and option validation.
#include "cache_actor/cache_actor.hpp"

#include <gtest/gtest.h>

#include "cache_actor/lru_cache.hpp"
#include "tests/cache_actor/cache_client.hpp"
#include "tests/cache_actor/cache_test_data.hpp"

namespace troupe::cache {
namespace {

using namespace std::chrono_literals;
using test::entry_of;
using test::key_of;
using test::same_entry;

TEST(cache_actor, a_store_is_a_hit_and_stats_count_it) {
  metrics_registry metrics;
  test::cache_system sys;
  auto cache = sys.spawn({}, &metrics);
  const auto k = key_of("rev|prompt 1 2 3|t=0");
  EXPECT_FALSE(sys.lookup(cache, k).hit);
  auto stored = entry_of(4, 10, true);
  stored.samples[0].id = 1234;
  sys.store(cache, k, stored);
  auto hit = sys.lookup(cache, k);
  ASSERT_TRUE(hit.hit);
  EXPECT_TRUE(same_entry(hit.entry, stored));
  EXPECT_EQ(hit.entry.samples[0].id, 0);  // the router sets its own request's id
  EXPECT_FALSE(sys.lookup(cache, key_of("rev|prompt 1 2 4|t=0")).hit);

  const auto s = sys.stats(cache);
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 2);
  EXPECT_EQ(s.entries, 1);
  EXPECT_EQ(s.bytes, entry_size(k, stored));
  EXPECT_EQ(s.evictions, 0);
  EXPECT_FALSE(s.redis_connected);
  EXPECT_EQ(s.redis_hits, 0);

  const std::string text = metrics.render();
  EXPECT_NE(text.find("troupe_cache_hits_total 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_misses_total 2\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_entries 1\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_bytes " + std::to_string(s.bytes) + "\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_redis_connected 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_evictions_total 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("troupe_cache_redis_errors_total 0\n"), std::string::npos) << text;
}

TEST(cache_actor, evicts_by_bytes_and_counts_it) {
  test::cache_system sys;
  const int64_t one = entry_size(key_of("k0"), entry_of(8));
  cache_options o;
  o.max_bytes = 2 * one;
  auto cache = sys.spawn(o);
  for (int i = 0; i < 3; ++i) sys.store(cache, key_of("k" + std::to_string(i)), entry_of(8));
  EXPECT_FALSE(sys.lookup(cache, key_of("k0")).hit);
  EXPECT_TRUE(sys.lookup(cache, key_of("k2")).hit);
  const auto s = sys.stats(cache);
  EXPECT_EQ(s.evictions, 1);
  EXPECT_EQ(s.entries, 2);
}

TEST(cache_actor, an_empty_key_is_never_cached) {
  test::cache_system sys;
  auto cache = sys.spawn({});
  sys.store(cache, {}, entry_of(3));
  EXPECT_FALSE(sys.lookup(cache, {}).hit);
  const auto s = sys.stats(cache);
  EXPECT_EQ(s.entries, 0);
  EXPECT_EQ(s.misses, 0);  // not a lookup that could have hit
}

TEST(cache_actor, validate_names_the_bad_option) {
  EXPECT_TRUE(validate({}));
  cache_options o;
  o.max_bytes = 0;
  auto bad = validate(o);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("--cache-max-bytes"), std::string::npos);
  o = {};
  o.ttl = -1s;
  EXPECT_FALSE(validate(o));
  o = {};
  o.ttl = 0s;
  EXPECT_TRUE(validate(o));
  for (const char* redis : {"localhost", "localhost:", "localhost:x", ":6379", "h:70000", "h:0"}) {
    o = {};
    o.redis = redis;
    auto v = validate(o);
    ASSERT_FALSE(v) << redis;
    EXPECT_NE(v.message().find("--cache-redis"), std::string::npos) << v.message();
  }
  o = {};
  o.redis = "127.0.0.1:6379";
  EXPECT_TRUE(validate(o));
  o.redis = "[::1]:6379";
  EXPECT_TRUE(validate(o));
}

TEST(cache_actor, invalid_options_still_spawn_a_working_memory_cache) {
  test::cache_system sys;
  cache_options o;
  o.max_bytes = -5;
  o.redis = "no port";
  auto cache = sys.spawn(o);
  sys.store(cache, key_of("k"), entry_of(2));
  EXPECT_TRUE(sys.lookup(cache, key_of("k")).hit);
  EXPECT_FALSE(sys.stats(cache).redis_connected);
}

}  // namespace
}  // namespace troupe::cache
