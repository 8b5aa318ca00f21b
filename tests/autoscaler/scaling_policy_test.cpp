// The scaling policies as units, on a clock of the test's own: fixed; target tracking that scales
// up only after a load lasted its window, down only after the lower load lasted its window and the
// groups left stay under target (load x N/(N-1)), never flaps at the threshold, and goes to the
// minimum at zero traffic; and the factory's errors.
#include "autoscaler/scaling_policy.hpp"

#include <gtest/gtest.h>

namespace troupe::autoscaler {
namespace {

clock::time_point at(double s) {
  static const clock::time_point t0 = clock::now();
  return t0 + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

// `n` serving groups with `outstanding` tokens each.
observation load(double t, int32_t n, int64_t outstanding) {
  observation o;
  o.now = at(t);
  o.current = n;
  for (int32_t i = 0; i < n; ++i) {
    group_load g;
    g.name = "w";
    g.name += std::to_string(i);
    g.outstanding_tokens = outstanding;
    o.serving.push_back(g);
  }
  return o;
}

scaling_config target_config() {
  scaling_config c;
  c.min_replicas = 1;
  c.max_replicas = 4;
  c.signal = "outstanding";
  c.target = 1000;
  c.up_window_s = 5;
  c.down_window_s = 30;
  return c;
}

TEST(scaling_policy, fixed_keeps_its_number_whatever_the_load) {
  scaling_config c;
  c.min_replicas = c.max_replicas = 3;
  auto p = make_scaling_policy("fixed", c);
  ASSERT_TRUE(p) << p.message();
  EXPECT_EQ((*p)->decide(load(0, 1, 100000)).desired, 3);
  EXPECT_EQ((*p)->decide(load(1, 5, 0)).desired, 3);
}

TEST(scaling_policy, target_scales_up_once_the_load_lasted_the_up_window) {
  auto p = make_scaling_policy("target", target_config());
  ASSERT_TRUE(p);
  auto& policy = **p;
  // 3000 tokens on one group against a target of 1000: three groups wanted, but not at once.
  decision d;
  for (double t = 0; t < 4.9; t += 0.25) {
    d = policy.decide(load(t, 1, 3000));
    EXPECT_EQ(d.desired, 1) << "at " << t << " s the up-window (5 s) has not passed";
  }
  d = policy.decide(load(5.0, 1, 3000));
  EXPECT_EQ(d.desired, 3);
  EXPECT_NE(d.reason.find("outstanding 3e+03 per group, target 1e+03"), std::string::npos) << d.reason;
}

TEST(scaling_policy, a_short_burst_does_not_scale_up) {
  auto p = make_scaling_policy("target", target_config());
  ASSERT_TRUE(p);
  for (double t = 0; t <= 20; t += 0.25) {
    const bool burst = t >= 10 && t < 12;  // 2 s, shorter than the 5 s window
    EXPECT_EQ((*p)->decide(load(t, 1, burst ? 5000 : 500)).desired, 1) << "at " << t << " s";
  }
}

TEST(scaling_policy, target_scales_down_after_the_down_window_and_only_if_the_rest_stay_under_target) {
  auto p = make_scaling_policy("target", target_config());
  ASSERT_TRUE(p);
  auto& policy = **p;
  // Three groups at 600 each: two would see 900 (< 1000), so one may go, after 30 s of it.
  for (double t = 0; t < 29.9; t += 0.5) EXPECT_EQ(policy.decide(load(t, 3, 600)).desired, 3) << t;
  const decision d = policy.decide(load(30, 3, 600));
  EXPECT_EQ(d.desired, 2);
  EXPECT_NE(d.reason.find("the 2 left would see 900"), std::string::npos) << d.reason;
  // Two groups at 600 each: one would see 1200 (> target): they stay, however long.
  auto q = make_scaling_policy("target", target_config());
  for (double t = 0; t < 120; t += 0.5) EXPECT_EQ((*q)->decide(load(t, 2, 600)).desired, 2) << t;
}

TEST(scaling_policy, steady_load_at_the_threshold_does_not_flap) {
  auto p = make_scaling_policy("target", target_config());
  ASSERT_TRUE(p);
  // Two groups hovering around the target (990-1010): 2 wanted, sometimes 3 for an instant.
  int changes = 0;
  int32_t last = 2;
  for (int i = 0; i < 600; ++i) {
    const int64_t tokens = i % 3 == 0 ? 1010 : 990;
    const int32_t d = (*p)->decide(load(0.25 * i, 2, tokens)).desired;
    changes += d != last;
    last = d;
  }
  EXPECT_EQ(changes, 0);
}

TEST(scaling_policy, zero_traffic_goes_to_the_minimum) {
  scaling_config c = target_config();
  c.min_replicas = 2;
  c.down_window_s = 10;
  auto p = make_scaling_policy("target", c);
  ASSERT_TRUE(p);
  decision d;
  for (double t = 0; t <= 10; t += 0.5) d = (*p)->decide(load(t, 4, 0));
  EXPECT_EQ(d.desired, 3) << "one step at a time";
  // Below the minimum (a worker died): back up at once, no window.
  auto q = make_scaling_policy("target", c);
  EXPECT_EQ((*q)->decide(load(0, 1, 0)).desired, 2);
}

// With min 0: a request held at the router asks for a group at once (no up-window); a group that
// is starting is not given up; and only a whole idle down-window goes back to zero.
TEST(scaling_policy, from_zero_and_back_to_zero) {
  scaling_config c = target_config();
  c.min_replicas = 0;
  c.down_window_s = 10;
  auto p = make_scaling_policy("target", c);
  ASSERT_TRUE(p);
  auto& policy = **p;
  observation idle = load(0, 0, 0);
  EXPECT_EQ(policy.decide(idle).desired, 0) << "nothing asked for";
  observation asked = load(0.5, 0, 0);
  asked.held = 3;
  const decision d = policy.decide(asked);
  EXPECT_EQ(d.desired, 1);
  EXPECT_EQ(d.reason, "scale from zero: 3 requests wait for a group");
  // Starting (current 1, nothing serving yet): kept, even past a down-window.
  for (double t = 1; t <= 15; t += 0.5) {
    observation starting = load(t, 0, 0);
    starting.current = 1;
    EXPECT_EQ(policy.decide(starting).desired, 1) << t;
  }
  // Serving with a little load: kept however long.
  for (double t = 15.5; t <= 40; t += 0.5) EXPECT_EQ(policy.decide(load(t, 1, 50)).desired, 1) << t;
  // Idle: back to zero once the down-window holds nothing but zero wishes.
  decision last{1, ""};
  double t = 40.5;
  for (; t <= 60 && last.desired != 0; t += 0.5) last = policy.decide(load(t, 1, 0));
  EXPECT_EQ(last.desired, 0);
  EXPECT_GE(t, 50.0) << "not before a whole idle down-window";
  EXPECT_NE(last.reason.find("idle for the down-window: to zero"), std::string::npos) << last.reason;
}

// The "queue" signal: seconds from arrival at a group to first token (p90, per report), averaged
// over the groups, against a target in seconds.
TEST(scaling_policy, the_queue_signal_tracks_seconds_to_first_token) {
  scaling_config c = target_config();
  c.signal = "queue";
  c.target = 0.5;
  auto p = make_scaling_policy("target", c);
  ASSERT_TRUE(p) << p.message();
  decision d;
  for (double t = 0; t <= 5; t += 0.25) {
    observation o = load(t, 2, 0);
    o.serving[0].queue_delay_p90_s = 1.8;
    o.serving[1].queue_delay_p90_s = 1.0;
    d = (*p)->decide(o);
  }
  EXPECT_EQ(d.desired, 4) << "ceil(2 x 1.4 / 0.5) = 6, at most 4";
  EXPECT_NE(d.reason.find("queue 1.4 per group, target 0.5"), std::string::npos) << d.reason;
}

TEST(scaling_policy, the_factory_names_what_is_wrong) {
  scaling_config c = target_config();
  auto bad = make_scaling_policy("guess", c);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("--scale-policy 'guess'"), std::string::npos);
  c.signal = "vibes";
  bad = make_scaling_policy("target", c);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("--scale-signal 'vibes'"), std::string::npos);
  c = target_config();
  c.signal = "kv";
  c.target = 1.5;
  EXPECT_FALSE(make_scaling_policy("target", c));
  c = target_config();
  c.min_replicas = 5;
  bad = make_scaling_policy("target", c);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("--min-workers 5"), std::string::npos);
  c = target_config();
  bad = make_scaling_policy("fixed", c);
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.message().find("--min-workers = --max-workers"), std::string::npos);
}

}  // namespace
}  // namespace troupe::autoscaler
