// Tests of the cache actor's Redis tier against a real redis-server: two caches (as two routers)
// sharing it, corrupt and hostile values planted in it, and Redis killed and restarted mid-test.
#include "cache_actor/redis_tier.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "cache_actor/entry_codec.hpp"
#include "tests/cache_actor/cache_client.hpp"
#include "tests/cache_actor/cache_test_data.hpp"
#include "tests/redis_server.hpp"

namespace troupe::cache {
namespace {

using namespace std::chrono_literals;
using test::entry_of;
using test::key_of;
using test::same_entry;

class redis_tier_test : public ::testing::Test {
 protected:
  void SetUp() override {
    if (test::redis_server_path().empty()) GTEST_SKIP() << "redis-server is not installed (Debian: redis-server)";
    ASSERT_TRUE(server_.start()) << "redis-server did not start on port " << server_.port();
  }

  cache_options with_redis() const {
    cache_options o;
    o.redis = server_.address();
    return o;
  }

  test::redis_server server_;  // destroyed (killed by PID) after sys_, whatever the test did
  test::cache_system sys_;
};

TEST_F(redis_tier_test, a_store_through_one_cache_is_a_hit_through_the_other) {
  auto a = sys_.spawn(with_redis());
  auto b = sys_.spawn(with_redis());
  const auto k = key_of("rev|shared prompt");
  const auto e = entry_of(6, 40, true);
  sys_.store(a, k, e);
  ASSERT_TRUE(sys_.stats(a).redis_connected);  // also: a has sent the SET
  auto hit = sys_.lookup(b, k);
  ASSERT_TRUE(hit.hit);
  EXPECT_TRUE(same_entry(hit.entry, e));
  auto s = sys_.stats(b);
  EXPECT_EQ(s.redis_hits, 1);
  EXPECT_EQ(s.hits, 1);
  EXPECT_EQ(s.misses, 0);
  EXPECT_EQ(s.entries, 1);  // the Redis hit is in b's memory now
  EXPECT_TRUE(sys_.lookup(b, k).hit);
  EXPECT_EQ(sys_.stats(b).redis_hits, 1);  // answered from memory
  EXPECT_FALSE(sys_.lookup(b, key_of("rev|other prompt")).hit);
  EXPECT_EQ(sys_.stats(b).misses, 1);

  const auto ttl = server_.command({"PTTL", redis_key(k)});
  ASSERT_TRUE(ttl);
  EXPECT_GT(std::stoll(*ttl), 3590000);
  EXPECT_LE(std::stoll(*ttl), 3600000);
}

TEST_F(redis_tier_test, ttl_zero_stores_without_expiry) {
  auto o = with_redis();
  o.ttl = 0s;
  auto a = sys_.spawn(o);
  sys_.store(a, key_of("forever"), entry_of(1));
  (void)sys_.stats(a);
  EXPECT_EQ(server_.command({"PTTL", redis_key(key_of("forever"))}), "-1");
}

TEST_F(redis_tier_test, corrupt_hostile_and_foreign_values_are_misses) {
  auto o = with_redis();
  o.max_bytes = 1 << 16;  // and so at most 64 KiB read from Redis
  auto a = sys_.spawn(o);
  ASSERT_TRUE(sys_.stats(a).redis_connected);
  auto plant = [this](const std::string& key, const std::string& value) {
    ASSERT_EQ(server_.command({"SET", redis_key(key_of(key)), value}), "OK");
  };
  plant("garbage", "definitely not an entry");
  std::string hostile = std::string("TRCE\x01\x00", 6) + std::string("\x07\x00\x00\x00", 4) + "hostile";
  hostile += std::string("\xff\xff\xff\xff", 4);  // 4 billion samples
  plant("hostile", hostile);
  auto foreign = encode_entry("another key with the same redis key", entry_of(3));
  ASSERT_TRUE(foreign);
  plant("foreign", *foreign);
  plant("huge", std::string(100000, 'x'));
  ASSERT_EQ(server_.command({"RPUSH", redis_key(key_of("a list")), "x"}), "1");
  auto truncated = encode_entry("truncated", entry_of(50));
  ASSERT_TRUE(truncated);
  plant("truncated", truncated->substr(0, truncated->size() - 3));

  for (const char* k : {"garbage", "hostile", "foreign", "huge", "a list", "truncated"})
    EXPECT_FALSE(sys_.lookup(a, key_of(k)).hit) << k;
  auto s = sys_.stats(a);
  EXPECT_EQ(s.misses, 6);
  EXPECT_EQ(s.redis_errors, 5);  // all but "foreign", which is just another key's value
  EXPECT_TRUE(s.redis_connected);
  EXPECT_EQ(s.entries, 0);

  // A store repairs the key; another cache then reads it.
  sys_.store(a, key_of("a list"), entry_of(2));
  (void)sys_.stats(a);
  auto b = sys_.spawn(with_redis());
  EXPECT_TRUE(sys_.lookup(b, key_of("a list")).hit);
}

TEST_F(redis_tier_test, redis_killed_is_memory_only_and_restarted_is_used_again) {
  metrics_registry metrics;
  auto a = sys_.spawn(with_redis(), &metrics);
  sys_.store(a, key_of("k1"), entry_of(3));
  ASSERT_TRUE(sys_.stats(a).redis_connected);

  server_.kill_now();
  EXPECT_TRUE(sys_.lookup(a, key_of("k1")).hit);
  sys_.store(a, key_of("k2"), entry_of(3));
  EXPECT_TRUE(sys_.lookup(a, key_of("k2")).hit);
  EXPECT_FALSE(sys_.lookup(a, key_of("k3")).hit);
  auto s = sys_.stats(a);
  EXPECT_FALSE(s.redis_connected);
  EXPECT_GE(s.redis_errors, 1);
  EXPECT_EQ(s.entries, 2);
  // While down, Redis is skipped, not retried per request: misses are fast and add no errors.
  const auto errors = s.redis_errors;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(sys_.lookup(a, key_of("absent " + std::to_string(i))).hit);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 1500ms);
  EXPECT_LE(sys_.stats(a).redis_errors, errors + 1);  // at most one retry fell in that window
  const std::string text = metrics.render();
  EXPECT_NE(text.find("troupe_cache_redis_connected 0\n"), std::string::npos) << text;

  ASSERT_TRUE(server_.start()) << "redis-server did not restart on port " << server_.port();
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (!sys_.stats(a).redis_connected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  ASSERT_TRUE(sys_.stats(a).redis_connected) << "no reconnect within 8 s";
  EXPECT_NE(metrics.render().find("troupe_cache_redis_connected 1\n"), std::string::npos);

  sys_.store(a, key_of("k4"), entry_of(5));
  (void)sys_.stats(a);
  EXPECT_EQ(server_.command({"EXISTS", redis_key(key_of("k4"))}), "1");
  auto b = sys_.spawn(with_redis());
  EXPECT_TRUE(sys_.lookup(b, key_of("k4")).hit);
  EXPECT_EQ(sys_.stats(b).redis_hits, 1);
}

TEST_F(redis_tier_test, an_unreachable_redis_at_start_is_memory_only_then_joined) {
  server_.kill_now();
  auto a = sys_.spawn(with_redis());
  sys_.store(a, key_of("k"), entry_of(2));
  EXPECT_TRUE(sys_.lookup(a, key_of("k")).hit);
  auto s = sys_.stats(a);
  EXPECT_FALSE(s.redis_connected);
  EXPECT_GE(s.redis_errors, 1);

  ASSERT_TRUE(server_.start());
  const auto deadline = std::chrono::steady_clock::now() + 8s;
  while (!sys_.stats(a).redis_connected && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(100ms);
  EXPECT_TRUE(sys_.stats(a).redis_connected) << "no connect within 8 s";
}

TEST(redis_key, is_versioned_and_hashes_the_bytes_not_the_given_hash) {
  const std::string k = redis_key(key_of("abc", 1));
  EXPECT_EQ(k.rfind("troupe:cache:v1:", 0), 0u);
  EXPECT_EQ(k.size(), std::string("troupe:cache:v1:").size() + 32);
  EXPECT_EQ(redis_key(key_of("abc", 2)), k);
  EXPECT_NE(redis_key(key_of("abd", 1)), k);
}

}  // namespace
}  // namespace troupe::cache
