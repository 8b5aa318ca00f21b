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
  // Lifted to the flood's counter: on a tie the older request goes first.
  EXPECT_DOUBLE_EQ(q.counter("light"), q.counter("flood"));
  // The flood's running requests stream on (each output token counts twice) while the light
  // tenant's request waits: it goes next, ahead of the flood's backlog.
  q.charge("flood", 2.0 * 5);
  auto next = q.pop();
  ASSERT_TRUE(next);
  EXPECT_EQ(next->first, 100) << "the light tenant, served least, goes next";
  EXPECT_EQ(next->second, "light");
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

// A light tenant beside a busy one is favoured (it may preempt); a tenant alone, a tenant with a
// backlog of its own, or one served more than the others is not.
TEST(fair_queue, a_light_tenant_beside_a_busy_one_is_favoured) {
  fair_queue q;
  EXPECT_FALSE(q.favoured("light")) << "nobody else is active";
  for (int64_t id = 0; id < 4; ++id) q.push(id, "busy");
  auto first = q.pop();
  q.dispatched("busy");
  q.charge("busy", 300);
  EXPECT_FALSE(q.favoured("busy")) << "busy has a backlog of its own";
  EXPECT_TRUE(q.favoured("light")) << "light has no backlog and the least service";
  q.push(10, "light");
  q.push(11, "light");
  EXPECT_FALSE(q.favoured("light")) << "with a backlog of its own it takes turns instead";
  q.charge("busy", 10);  // busy's running request streams on
  EXPECT_EQ(q.pop()->first, 10);
  q.dispatched("light");
  EXPECT_FALSE(q.favoured("light")) << "request 11 still waits";
  EXPECT_EQ(q.pop()->first, 11);
  EXPECT_TRUE(q.favoured("light")) << "nothing of its own waits now, and it has the least service";
  q.charge("light", 1000);
  EXPECT_FALSE(q.favoured("light")) << "served more than busy now";
  q.settled("busy");
  (void)first;
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
