// Tests of the Redis value format: a round trip of every field, and corrupt or hostile values (every
// truncation, trailing bytes, another version, huge counts, random damage) decoded as errors.
#include "cache_actor/entry_codec.hpp"

#include <gtest/gtest.h>

#include <random>

#include "tests/cache_actor/cache_test_data.hpp"

namespace troupe::cache {
namespace {

using test::entry_of;
using test::same_entry;

cluster::cache_entry rich_entry() {
  cluster::cache_entry e = entry_of(5, 10, true);
  cluster::token_chunk second;
  second.sample = 1;
  second.finish = finish_reason::length;
  second.tokens = {0, 2147483647};
  second.error.message = std::string("bin\0ary", 7);
  e.samples.push_back(second);
  e.samples[0].id = 99;  // not stored
  return e;
}

std::string le32(uint32_t v) {
  std::string s;
  for (int i = 0; i < 4; ++i) s.push_back(char(v >> (8 * i)));
  return s;
}

TEST(entry_codec, round_trips_every_field_but_the_id) {
  const std::string key("model\0rev|1,2,3", 15);
  auto bytes = encode_entry(key, rich_entry());
  ASSERT_TRUE(bytes) << bytes.message();
  EXPECT_EQ(bytes->substr(0, 6), std::string("TRCE\x01\x00", 6));
  auto back = decode_entry(*bytes);
  ASSERT_TRUE(back) << back.message();
  EXPECT_EQ(back->key_bytes, key);
  EXPECT_TRUE(same_entry(back->entry, rich_entry()));
  EXPECT_EQ(back->entry.samples[0].id, 0);
}

TEST(entry_codec, an_empty_entry_round_trips) {
  auto bytes = encode_entry("k", {});
  ASSERT_TRUE(bytes);
  auto back = decode_entry(*bytes);
  ASSERT_TRUE(back);
  EXPECT_TRUE(back->entry.samples.empty());
}

TEST(entry_codec, every_truncation_is_an_error) {
  auto bytes = encode_entry("the key", rich_entry());
  ASSERT_TRUE(bytes);
  for (size_t n = 0; n < bytes->size(); ++n) EXPECT_FALSE(decode_entry(bytes->substr(0, n))) << n;
}

TEST(entry_codec, trailing_bytes_wrong_magic_and_other_versions_are_errors) {
  auto bytes = encode_entry("k", entry_of(3));
  ASSERT_TRUE(bytes);
  EXPECT_FALSE(decode_entry(*bytes + "x"));
  std::string magic = *bytes;
  magic[0] = 'X';
  EXPECT_FALSE(decode_entry(magic));
  std::string version = *bytes;
  version[4] = 2;
  auto v = decode_entry(version);
  ASSERT_FALSE(v);
  EXPECT_NE(v.message().find("version 2"), std::string::npos) << v.message();
}

TEST(entry_codec, huge_counts_are_refused_before_allocating) {
  const std::string head = std::string("TRCE\x01\x00", 6) + le32(1) + "k";
  EXPECT_FALSE(decode_entry(head + le32(0xFFFFFFFF)));                       // samples
  EXPECT_FALSE(decode_entry(std::string("TRCE\x01\x00", 6) + le32(0xFFFFFFF0) + "k"));  // key length
  const std::string sample = le32(0) + std::string(1, '\0') + le32(0);       // sample 0, finish stop, status 0
  EXPECT_FALSE(decode_entry(head + le32(1) + sample + le32(0x40000000)));    // tokens
  const std::string one_token = le32(1) + le32(5);
  EXPECT_FALSE(decode_entry(head + le32(1) + sample + one_token + le32(0xFFFFFFFF)));  // logprobs
  const std::string logprob = le32(5) + le32(0) + le32(0x7FFFFFFF);          // token, logprob, top count
  EXPECT_FALSE(decode_entry(head + le32(1) + sample + one_token + le32(1) + logprob));
  EXPECT_FALSE(decode_entry(head + le32(1) + sample + le32(0) + le32(0) + le32(0xFFFFFFFF)));  // error text
  // And the well-formed version of the same value decodes.
  EXPECT_TRUE(decode_entry(head + le32(1) + sample + le32(0) + le32(0) + le32(0)));
}

TEST(entry_codec, values_out_of_range_are_errors) {
  const std::string head = std::string("TRCE\x01\x00", 6) + le32(1) + "k" + le32(1);
  const std::string empty_rest = le32(0) + le32(0) + le32(0) + le32(0);  // status, T, L, E
  EXPECT_TRUE(decode_entry(head + le32(0) + std::string(1, '\0') + empty_rest));
  EXPECT_TRUE(decode_entry(head + le32(0) + std::string(1, '\1') + empty_rest));
  EXPECT_FALSE(decode_entry(head + le32(0) + std::string(1, char(7)) + empty_rest));
  EXPECT_FALSE(decode_entry(head + le32(0) + std::string(1, char(0xff)) + empty_rest));  // none: never ends
  EXPECT_FALSE(decode_entry(head + le32(0) + std::string(1, char(3)) + empty_rest));     // error
  EXPECT_FALSE(decode_entry(head + le32(1) + std::string(1, '\0') + empty_rest));       // sample 1 of 1
  EXPECT_FALSE(decode_entry(head + le32(0) + std::string(1, '\0') + le32(0) + le32(1) + le32(0xFFFFFFFF) +
                            le32(0) + le32(0)));  // token -1
  // Two tokens with one logprob.
  EXPECT_FALSE(decode_entry(head + le32(0) + std::string(1, '\0') + le32(0) + le32(2) + le32(1) + le32(2) +
                            le32(1) + le32(1) + le32(0) + le32(0) + le32(0)));
}

TEST(entry_codec, encoding_refuses_what_it_could_not_read_back) {
  auto bad_top = entry_of(1, 1, true);
  bad_top.samples[0].logprobs[0].top_logprobs.pop_back();
  EXPECT_FALSE(encode_entry("k", bad_top));
  auto bad_count = entry_of(2, 1, true);
  bad_count.samples[0].logprobs.pop_back();
  EXPECT_FALSE(encode_entry("k", bad_count));
  auto negative = entry_of(1);
  negative.samples[0].tokens[0] = -5;
  EXPECT_FALSE(encode_entry("k", negative));
  auto unfinished = entry_of(1);
  unfinished.samples[0].finish = finish_reason::none;
  EXPECT_FALSE(encode_entry("k", unfinished));
  auto out_of_order = rich_entry();
  std::swap(out_of_order.samples[0], out_of_order.samples[1]);
  EXPECT_FALSE(encode_entry("k", out_of_order));
}

TEST(entry_codec, random_damage_never_crashes) {
  auto bytes = encode_entry("a key", rich_entry());
  ASSERT_TRUE(bytes);
  std::mt19937 rng(1234);
  int decoded = 0;
  for (int round = 0; round < 20000; ++round) {
    std::string damaged = *bytes;
    const int flips = 1 + int(rng() % 4);
    for (int i = 0; i < flips; ++i) damaged[rng() % damaged.size()] = char(rng());
    if (rng() % 4 == 0) damaged.resize(rng() % damaged.size());
    if (auto d = decode_entry(damaged)) ++decoded;  // some damage lands in values: still well-formed
  }
  SUCCEED() << decoded << " damaged values were still well-formed";
}

}  // namespace
}  // namespace troupe::cache
