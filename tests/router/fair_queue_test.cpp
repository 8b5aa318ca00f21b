// The router's fair queue (VTC): the least-served tenant goes first, weights scale service, idle
// time banks no credit, and removal and restore keep each tenant's order.
#include "router/fair_queue.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace troupe::router {
namespace {

// Pops everything, charging each popped request `cost` tokens to its tenant.
std::vector<int64_t> drain(fair_queue& q, double cost) {
  std::vector<int64_t> out;
  while (auto next = q.pop()) {
    out.push_back(next->first);
    q.charge(next->second, cost);
  }
  return out;
}

TEST(fair_queue, one_tenant_is_first_come_first_served) {
  fair_queue q;
  for (int64_t id : {5, 3, 9}) q.push(id, "");
  EXPECT_EQ(q.size(), 3u);
  EXPECT_EQ(drain(q, 10), (std::vector<int64_t>{5, 3, 9}));
  EXPECT_TRUE(q.empty());
}

TEST(fair_queue, a_light_tenant_overtakes_a_flood) {
  fair_queue q;
  for (int64_t id = 1; id <= 20; ++id) q.push(id, "flood");
  // The flood has been served two requests already when the light tenant's one arrives.
  for (int i = 0; i < 2; ++i) {
    auto next = q.pop();
    ASSERT_TRUE(next);
    q.charge(next->second, 100);
  }
  q.push(100, "light");
  q.push(101, "light");
  // Lifted to the flood's counter; on the tie, the tenant with less in flight goes first.
  EXPECT_DOUBLE_EQ(q.counter("light"), q.counter("flood"));
  auto next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, 100) << "the light tenant, as served as the flood and with less in flight";
  EXPECT_EQ(next->second, "light");
  q.dispatched("light");
  q.charge("light", 100);
  // Now the flood is behind: its oldest request goes next.
  next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, 3);
  q.charge("flood", 100);
  // The flood's requests stream on (each output token counts twice) while the light tenant's
  // second request waits: it goes next, ahead of the flood's backlog.
  q.charge("flood", 2.0 * 5);
  next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, 101) << "the light tenant, served least, goes next";
}

TEST(fair_queue, weights_share_the_service) {
  fair_queue q({{"gold", 3.0}, {"bronze", 1.0}});
  for (int64_t id = 0; id < 40; ++id) q.push(id, id % 2 == 0 ? "gold" : "bronze");
  int gold = 0;
  for (int i = 0; i < 16; ++i) {
    auto next = q.pop();
    ASSERT_TRUE(next);
    gold += next->second == "gold";
    q.charge(next->second, 100);
  }
  EXPECT_EQ(gold, 12) << "weight 3 against 1: three of every four requests";
}

TEST(fair_queue, output_counts_twice_as_much_as_input) {
  fair_queue q;
  q.charge("a", 100);       // 100 input tokens
  q.charge("b", 2.0 * 60);  // 60 output tokens
  EXPECT_DOUBLE_EQ(q.counter("a"), 100);
  EXPECT_DOUBLE_EQ(q.counter("b"), 120);
  q.push(1, "b");
  q.push(2, "a");
  EXPECT_EQ(q.pop()->first, 1) << "b waited first: lifted to nothing lower, its own counter stands";
}

TEST(fair_queue, idle_time_banks_no_credit) {
  fair_queue q;
  // "busy" is served a lot while "idle" sends nothing.
  for (int64_t id = 0; id < 10; ++id) q.push(id, "busy");
  for (int i = 0; i < 5; ++i) q.charge(q.pop()->second, 100);
  // "idle" arrives with a burst: it is lifted to busy's counter, so the two alternate instead of
  // idle taking every place until it has caught up 500 tokens.
  for (int64_t id = 100; id < 105; ++id) q.push(id, "idle");
  EXPECT_DOUBLE_EQ(q.counter("idle"), q.counter("busy"));
  std::vector<std::string> order;
  for (int i = 0; i < 4; ++i) {
    auto next = q.pop();
    order.push_back(next->second);
    q.charge(next->second, 100);
  }
  EXPECT_EQ(std::count(order.begin(), order.end(), "idle"), 2);
}

// A light tenant beside a busy one is favoured (it goes first and may preempt), whatever it has
// waiting, while its recent service is well below its share; a tenant alone, or one that has had
// its share lately, is not; two busy tenants at about half each favour neither.
TEST(fair_queue, a_light_tenant_beside_a_busy_one_is_favoured) {
  using clock = fair_queue::clock;
  const auto t0 = clock::now();
  const auto at = [t0](double s) { return t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s)); };
  fair_queue q;
  EXPECT_FALSE(q.favoured("light", at(0))) << "nobody else is active";
  for (int64_t id = 0; id < 4; ++id) q.push(id, "busy");
  auto first = q.pop();
  ASSERT_TRUE(first);
  q.dispatched("busy");
  q.charge("busy", 300, at(0));
  EXPECT_FALSE(q.favoured("busy", at(0))) << "it has had all the service";
  EXPECT_TRUE(q.favoured("light", at(0))) << "no service lately, beside an active tenant";
  q.push(10, "light");
  q.push(11, "light");
  auto f = q.pop_favoured(at(0.01));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->first, 10) << "the favoured tenant's oldest, ahead of busy's older backlog";
  q.dispatched("light");
  q.charge("light", 100, at(0.01));
  f = q.pop_favoured(at(0.02));
  ASSERT_TRUE(f) << "100 of 400 recent tokens is below 0.8 of its half";
  EXPECT_EQ(f->first, 11);
  q.dispatched("light");
  q.charge("light", 200, at(0.02));
  EXPECT_FALSE(q.favoured("light", at(0.03))) << "300 of 600: its share";
  q.push(12, "light");
  EXPECT_FALSE(q.pop_favoured(at(0.03)));
  EXPECT_EQ(q.pop()->first, 1) << "by the counters: busy's 300 is below light's 600 (lifted to 300 when it began waiting)";
  // Busy streams on for seconds while light is idle: light's share decays, busy's grows.
  for (int i = 1; i <= 40; ++i) q.charge("busy", 100, at(0.1 * i));
  q.settled("light");
  q.settled("light");
  q.settled("light");
  EXPECT_TRUE(q.favoured("light", at(4.0)));
  EXPECT_FALSE(q.favoured("busy", at(4.0)));
  // Two busy tenants served alike: neither is favoured (they never preempt each other).
  fair_queue two;
  for (int64_t id = 0; id < 8; ++id) two.push(id, id % 2 == 0 ? "a" : "b");
  for (int i = 0; i < 6; ++i) {
    auto n = two.pop();
    ASSERT_TRUE(n);
    two.dispatched(n->second);
    two.charge(n->second, 100 + 10 * i, at(0.1 * i));
  }
  EXPECT_FALSE(two.favoured("a", at(0.6)));
  EXPECT_FALSE(two.favoured("b", at(0.6)));
  EXPECT_FALSE(two.pop_favoured(at(0.6)));
}

TEST(fair_queue, removed_and_restored_requests_keep_the_order) {
  fair_queue q;
  for (int64_t id : {1, 2, 3}) q.push(id, "t");
  EXPECT_TRUE(q.remove(2));
  EXPECT_FALSE(q.remove(2));
  EXPECT_FALSE(q.remove(42));
  auto next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, 1);
  q.restore(next->first, next->second);  // no room after all
  EXPECT_EQ(drain(q, 1), (std::vector<int64_t>{1, 3}));
  q.push(7, "t");
  q.push(7, "t");  // a duplicate id is ignored
  EXPECT_EQ(q.size(), 1u);
}

}  // namespace
}  // namespace troupe::router
