// Admission control as a unit: the queue bound shared fairly among tenants by weight, the hard
// ceiling at twice the bound, the token quota, and draining.
#include "frontend/core/admission.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace troupe::frontend {
namespace {

key_entry key(std::string label, double weight = 1, int64_t tokens_per_minute = 0) {
  key_entry k;
  k.label = std::move(label);
  k.weight = weight;
  k.tokens_per_minute = tokens_per_minute;
  return k;
}

std::optional<admission::ticket> take(admission& a, const key_entry* who) {
  auto r = a.admit(who);
  if (auto* t = std::get_if<admission::ticket>(&r)) return std::move(*t);
  return std::nullopt;
}

std::optional<admission::ticket> take(admission& a, const key_entry& who) { return take(a, &who); }

TEST(admission_unit, one_tenant_gets_the_bound_and_a_429_beyond) {
  admission a({4, 1 << 20, 0});
  std::vector<admission::ticket> held;
  for (int i = 0; i < 4; ++i) {
    auto t = take(a, nullptr);
    ASSERT_TRUE(t) << i;
    held.push_back(std::move(*t));
  }
  auto refused = a.admit(nullptr);
  ASSERT_TRUE(std::holds_alternative<failure>(refused));
  const failure& f = std::get<failure>(refused);
  EXPECT_EQ(f.code, failure_code::overloaded);
  EXPECT_GE(f.retry_after_s, 1);
  EXPECT_NE(f.message.find("4 requests are queued (limit 4)"), std::string::npos) << f.message;
  held[0].started();  // one starts: its place is free
  EXPECT_TRUE(take(a, nullptr));
}

TEST(admission_unit, a_flood_cannot_shut_out_another_key) {
  admission a({8, 1 << 20, 0});
  const key_entry flood = key("flood"), light = key("light");
  std::vector<admission::ticket> held;
  while (auto t = take(a, flood)) held.push_back(std::move(*t));
  EXPECT_EQ(held.size(), 8u) << "alone, the flood may fill the whole queue";
  // The light key is below its share (half of 8): it gets in although the queue is full.
  for (int i = 0; i < 4; ++i) {
    auto t = take(a, light);
    ASSERT_TRUE(t) << i;
    held.push_back(std::move(*t));
  }
  EXPECT_FALSE(take(a, light)) << "at its share, the light key waits too";
  EXPECT_FALSE(take(a, flood));
}

TEST(admission_unit, weights_scale_the_share_and_twice_the_bound_is_the_ceiling) {
  admission a({10, 1 << 20, 0});
  std::vector<admission::ticket> held;
  while (auto t = take(a, key("a", 1))) held.push_back(std::move(*t));
  ASSERT_EQ(held.size(), 10u);
  // "b" weighs 4 against a's 1: its share of a full queue is 8 of 10.
  int b = 0;
  while (auto t = take(a, key("b", 4))) {
    held.push_back(std::move(*t));
    ++b;
  }
  EXPECT_EQ(b, 8);
  // "c" (weight 10) would be below its share, but the queue holds 18 of a ceiling of 20.
  int c = 0;
  while (auto t = take(a, key("c", 10))) {
    held.push_back(std::move(*t));
    ++c;
  }
  EXPECT_EQ(c, 2) << "at most twice the bound in all";
}

// Under the time-based bound (smaller than --max-queued-requests), a key with nothing queued is let
// in up to --max-queued-requests, however far the flood's requests (admitted while the bound was
// larger) are past twice the bound: it waits for none of them (the router favours it). Its second
// request is held to its share again.
TEST(admission_unit, a_key_with_nothing_queued_gets_in_up_to_the_count_cap) {
  admission a({64, 1 << 20, 0.1});
  const key_entry flood = key("flood"), light = key("light");
  std::vector<admission::ticket> held;
  for (int i = 0; i < 10; ++i) {  // no start rate measured yet: the count bound, 64
    auto t = take(a, flood);
    ASSERT_TRUE(t) << i;
    held.push_back(std::move(*t));
  }
  // ~10 starts a second make the bound small: ceil(10 x 0.1 s) = 1, at least 2.
  for (int i = 0; i < 30 && a.queue_bound(0) > 3; ++i) {
    auto t = take(a, flood);
    ASSERT_TRUE(t) << i;
    t->started();
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  ASSERT_LE(a.queue_bound(0), 3) << "10 queued are past twice the bound";
  EXPECT_FALSE(take(a, flood));
  auto l = take(a, light);
  ASSERT_TRUE(l) << "nothing queued: let in although the queue is past twice the bound";
  EXPECT_FALSE(take(a, light)) << "one queued: held to its share again";
}

TEST(admission_unit, the_token_quota_takes_the_prompt_and_the_output) {
  admission a;
  const key_entry q = key("metered", 1, 600);  // 600 tokens per minute: 10 per second
  auto t = take(a, q);
  ASSERT_TRUE(t);
  EXPECT_FALSE(t->add_tokens(500));
  t->charge_generated(150);  // a long output takes the bucket below empty
  auto next = take(a, q);
  EXPECT_FALSE(next) << "no quota left";
  auto refused = a.admit(&q);
  ASSERT_TRUE(std::holds_alternative<failure>(refused));
  EXPECT_EQ(std::get<failure>(refused).code, failure_code::overloaded);
  EXPECT_NE(std::get<failure>(refused).message.find("600 tokens per minute"), std::string::npos);
  EXPECT_GE(std::get<failure>(refused).retry_after_s, 1);
  // Another key is not affected.
  EXPECT_TRUE(take(a, key("other", 1)));
  // A prompt bigger than the whole quota can never pass: invalid, not "retry later".
  admission b;
  auto big = take(b, q);
  ASSERT_TRUE(big);
  auto too_big = big->add_tokens(601);
  ASSERT_TRUE(too_big);
  EXPECT_EQ(too_big->code, failure_code::invalid_request);
}

// The bound follows the measured start rate: what starts within --max-queue-wait, never below the
// floor (which holds while no rate is known).
TEST(admission_unit, the_queue_bound_is_what_starts_within_the_wait) {
  admission a({1000, 1 << 20, 0.1, 4});
  EXPECT_EQ(a.queue_bound(), 1000) << "no start measured yet: the count bound alone";
  std::vector<admission::ticket> held;
  // About 100 starts in a second: 10 start within 0.1 s.
  for (int i = 0; i < 100; ++i) {
    auto t = take(a, nullptr);
    ASSERT_TRUE(t) << i;
    t->started();
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(1010));
  take(a, nullptr)->started();  // closes the 1 s window
  EXPECT_GE(a.queue_bound(), 8);
  EXPECT_LE(a.queue_bound(), 11);
  EXPECT_GE(a.queue_bound(20), 28) << "what the groups hold themselves comes on top";
  int admitted = 0;
  while (auto t = take(a, nullptr)) {
    held.push_back(std::move(*t));
    ++admitted;
  }
  EXPECT_EQ(admitted, a.queue_bound());
}

TEST(admission_unit, draining_refuses_everyone_as_unavailable) {
  admission a;
  a.start_draining(7);
  const key_entry x = key("x");
  auto r = a.admit(&x);
  ASSERT_TRUE(std::holds_alternative<failure>(r));
  EXPECT_EQ(std::get<failure>(r).code, failure_code::unavailable);
  EXPECT_EQ(std::get<failure>(r).retry_after_s, 7);
}

}  // namespace
}  // namespace troupe::frontend
