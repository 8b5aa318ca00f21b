// Tests of the routing policies: least-outstanding's choice and tie breaks; prefix affinity's
// stickiness, spread, bounded loads, consistent-hashing stability and short-prompt fallback.
#include "router/routing_policy.hpp"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <random>
#include <vector>

namespace troupe::router {
namespace {

std::unique_ptr<routing_policy> make(std::string_view name, routing_options options = {}) {
  auto policy = make_routing_policy(name, options);
  EXPECT_TRUE(policy.has_value()) << (policy ? "" : policy.message());
  return std::move(policy).value();
}

std::vector<group_load> idle_groups(std::initializer_list<uint64_t> keys) {
  std::vector<group_load> groups;
  for (const uint64_t key : keys) groups.push_back({.key = key});
  return groups;
}

// A prompt of `blocks` full 16-token blocks of random ids, then `tail` more.
std::vector<int32_t> random_prompt(std::mt19937& rng, int blocks, int tail = 0) {
  std::uniform_int_distribution<int32_t> id(0, 31999);
  std::vector<int32_t> prompt(static_cast<size_t>(blocks * 16 + tail));
  for (int32_t& t : prompt) t = id(rng);
  return prompt;
}

TEST(routing_policy, least_outstanding_picks_the_minimum) {
  auto policy = make("least-outstanding");
  EXPECT_EQ(policy->name(), "least-outstanding");
  EXPECT_EQ(policy->choose({}, {}), std::nullopt);
  std::vector<group_load> groups = idle_groups({10, 20, 30, 40});
  groups[0].outstanding_tokens = 500;
  groups[1].outstanding_tokens = 120;
  groups[2].outstanding_tokens = 300;
  groups[3].outstanding_tokens = 121;
  const std::vector<int32_t> prompt(100, 7);
  EXPECT_EQ(policy->choose(groups, prompt), 1u);
}

TEST(routing_policy, least_outstanding_breaks_ties_by_queue_then_index) {
  auto policy = make("least-outstanding");
  std::vector<group_load> groups = idle_groups({10, 20, 30, 40});
  for (group_load& g : groups) g.outstanding_tokens = 100;
  groups[0].running = 3;
  groups[1].running = 1, groups[1].waiting = 1;
  groups[2].waiting = 2;
  groups[3].running = 2, groups[3].waiting = 1;
  EXPECT_EQ(policy->choose(groups, {}), 1u);  // 1 and 2 tie on tokens and queue: the lower index
  groups[1].waiting = 2;
  EXPECT_EQ(policy->choose(groups, {}), 2u);
  for (group_load& g : groups) g.running = g.waiting = 0;
  EXPECT_EQ(policy->choose(groups, {}), 0u);
}

TEST(routing_policy, prefix_affinity_sends_equal_prefixes_to_the_same_group) {
  auto policy = make("prefix-affinity");
  EXPECT_EQ(policy->name(), "prefix-affinity");
  EXPECT_EQ(policy->choose({}, std::vector<int32_t>(64, 1)), std::nullopt);
  const std::vector<group_load> groups = idle_groups({101, 202, 303, 404});
  std::mt19937 rng(1);
  for (int trial = 0; trial < 50; ++trial) {
    std::vector<int32_t> a = random_prompt(rng, 4, 5);
    const auto chosen = policy->choose(groups, a);
    ASSERT_TRUE(chosen.has_value());
    // Only the leading 4 blocks count: a different continuation, or more blocks, land together.
    std::vector<int32_t> b(a.begin(), a.begin() + 64);
    for (int i = 0; i < 40; ++i) b.push_back(static_cast<int32_t>(rng() % 1000));
    EXPECT_EQ(policy->choose(groups, b), chosen);
    // A fresh policy agrees (determinism), and so does the same set of groups in another order.
    std::vector<group_load> reversed(groups.rbegin(), groups.rend());
    const auto in_reverse = make("prefix-affinity")->choose(reversed, a);
    ASSERT_TRUE(in_reverse.has_value());
    EXPECT_EQ(reversed[*in_reverse].key, groups[*chosen].key);
  }
}

TEST(routing_policy, prefix_affinity_spreads_different_prefixes) {
  auto policy = make("prefix-affinity");
  const std::vector<group_load> groups = idle_groups({0x1111, 0x2222, 0x3333, 0x4444});
  std::mt19937 rng(2);
  std::array<int, 4> share{};
  for (int i = 0; i < 400; ++i) {
    const auto chosen = policy->choose(groups, random_prompt(rng, 4));
    ASSERT_TRUE(chosen.has_value());
    ++share[*chosen];
  }
  for (const int s : share) {  // 100 each on average; 64 virtual nodes keep arcs within ~±30%
    EXPECT_GE(s, 50);
    EXPECT_LE(s, 170);
  }
}

TEST(routing_policy, prefix_affinity_skips_a_group_over_the_load_bound) {
  auto policy = make("prefix-affinity");  // load_bound 1.25
  std::vector<group_load> groups = idle_groups({7, 8, 9, 10});
  std::mt19937 rng(3);
  const std::vector<int32_t> prompt = random_prompt(rng, 4);  // 64 tokens
  const size_t home = *policy->choose(groups, prompt);

  // All at 1000, home at 1200: bound 1.25 x (4200 + 64 + 1) / 4 = 1332.8: home still fits.
  for (group_load& g : groups) g.outstanding_tokens = 1000;
  groups[home].outstanding_tokens = 1200;
  EXPECT_EQ(policy->choose(groups, prompt), home);

  // Home at 1500 > bound (1.25 x 4565 / 4 = 1426.6): the walk moves on to another group.
  groups[home].outstanding_tokens = 1500;
  const auto moved = policy->choose(groups, prompt);
  ASSERT_TRUE(moved.has_value());
  EXPECT_NE(*moved, home);

  // Idle cluster: every group is within the bound (never 0), so home again.
  for (group_load& g : groups) g.outstanding_tokens = 0;
  EXPECT_EQ(policy->choose(groups, prompt), home);
}

TEST(routing_policy, prefix_affinity_removing_a_group_moves_only_its_keys) {
  auto policy = make("prefix-affinity");
  const std::vector<group_load> all = idle_groups({11, 22, 33, 44});
  std::vector<group_load> survivors = all;
  survivors.erase(survivors.begin() + 2);  // group 33 leaves
  std::mt19937 rng(4);
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 400; ++i) prompts.push_back(random_prompt(rng, 4));

  std::vector<uint64_t> before;
  for (const auto& p : prompts) before.push_back(all[*policy->choose(all, p)].key);
  int moved = 0;
  for (size_t i = 0; i < prompts.size(); ++i) {
    const uint64_t after = survivors[*policy->choose(survivors, prompts[i])].key;
    if (before[i] == 33) {
      ++moved;
    } else {
      EXPECT_EQ(after, before[i]) << "prompt " << i << " moved off a surviving group";
    }
  }
  EXPECT_GT(moved, 0);
  // And back: the group returning takes its keys back, the ring being a function of the key set.
  for (size_t i = 0; i < prompts.size(); ++i) EXPECT_EQ(all[*policy->choose(all, prompts[i])].key, before[i]);
}

TEST(routing_policy, prefix_affinity_short_prompt_falls_back_to_least_outstanding) {
  auto policy = make("prefix-affinity", {.block_size = 16});
  std::vector<group_load> groups = idle_groups({1, 2, 3, 4});
  groups[0].outstanding_tokens = 40;
  groups[1].outstanding_tokens = 30;
  groups[2].outstanding_tokens = 20;
  groups[3].outstanding_tokens = 10;
  std::mt19937 rng(5);
  for (int len = 0; len < 16; ++len) {
    const std::vector<int32_t> prompt = random_prompt(rng, 0, len);
    EXPECT_EQ(policy->choose(groups, prompt), 3u) << "length " << len;
  }
}

TEST(routing_policy, unknown_name_and_bad_options_are_errors) {
  const auto unknown = make_routing_policy("round-robin");
  ASSERT_FALSE(unknown.has_value());
  EXPECT_NE(unknown.message().find("round-robin"), std::string::npos);
  EXPECT_NE(unknown.message().find("least-outstanding"), std::string::npos);
  EXPECT_NE(unknown.message().find("prefix-affinity"), std::string::npos);
  EXPECT_FALSE(make_routing_policy("prefix-affinity", {.block_size = 0}).has_value());
  EXPECT_FALSE(make_routing_policy("prefix-affinity", {.affinity_blocks = 0}).has_value());
  EXPECT_FALSE(make_routing_policy("prefix-affinity", {.load_bound = 0.9}).has_value());
  EXPECT_FALSE(make_routing_policy("prefix-affinity", {.virtual_nodes = 0}).has_value());
}

}  // namespace
}  // namespace troupe::router
