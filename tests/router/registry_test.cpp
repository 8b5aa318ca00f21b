// The registry interface (common/actors.hpp registry_actor) through a real actor system: the real
// router actor and real shard-group leaders running a tiny model on the CPU. Each message is sent
// as another role would (list, subscribe, cordon, uncordon, drain), and what the router routes
// afterwards is checked through the token streams it delivers.
#include "tests/router/router_fixture.hpp"

namespace troupe::router {
namespace {

using namespace cluster;
using namespace fixture;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

class registry_test : public router_fixture {};

TEST_F(registry_test, list_names_each_group_with_its_model_revision_state_and_load) {
  add_group("g1");
  add_group("g2");
  auto l = list();
  ASSERT_EQ(l.size(), 2u);
  for (const char* name : {"g1", "g2"}) {
    const group_status* g = find(l, name);
    ASSERT_NE(g, nullptr) << name;
    EXPECT_EQ(g->info.model, "tiny");
    EXPECT_EQ(g->info.revision, revision);
    EXPECT_EQ(g->state, group_state::serving);
    EXPECT_GT(g->info.kv_capacity_tokens, 0);
  }
  // The leaders report their load every second; the list carries the latest.
  const auto deadline = clock_type::now() + 5s;
  while (clock_type::now() < deadline && find(list(), "g1")->load.kv_blocks_total == 0)
    std::this_thread::sleep_for(50ms);
  EXPECT_GT(find(list(), "g1")->load.kv_blocks_total, 0);
  EXPECT_EQ(run(1, 4).finish, finish_reason::length);
  EXPECT_EQ(find(list(), "g1")->routed + find(list(), "g2")->routed, 1);
}

TEST_F(registry_test, a_subscriber_gets_the_list_then_joins_loads_state_changes_and_leaves) {
  add_group("g1");
  auto log = std::make_shared<event_log>();
  auto sub = spawn_subscriber(sys_, log);
  caf::scoped_actor self{sys_};
  std::vector<group_status> now;
  self->request(caf::actor_cast<registry_actor>(router_), 10s, subscribe_atom::value, sub)
      .receive([&now](std::vector<group_status>& l) { now = std::move(l); },
               [this](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  ASSERT_EQ(now.size(), 1u);
  EXPECT_EQ(now[0].info.name, "g1");

  auto g2 = add_group("g2");
  auto joined = log->next([](const registry_event& e) { return e.change == registry_change::joined; });
  ASSERT_TRUE(joined);
  EXPECT_EQ(joined->group.info.name, "g2");

  auto load = log->next([](const registry_event& e) { return e.change == registry_change::load; });
  ASSERT_TRUE(load);
  EXPECT_GT(load->group.load.kv_blocks_total, 0);

  ASSERT_TRUE(ask(cordon_atom::value, "g1"));
  auto state = log->next([](const registry_event& e) { return e.change == registry_change::state; });
  ASSERT_TRUE(state);
  EXPECT_EQ(state->group.info.name, "g1");
  EXPECT_EQ(state->group.state, group_state::cordoned);

  // A group whose node dies leaves with the reason.
  caf::anon_send_exit(g2, caf::exit_reason::kill);
  auto left = log->next([](const registry_event& e) { return e.change == registry_change::left; });
  ASSERT_TRUE(left);
  EXPECT_EQ(left->group.info.name, "g2");
  EXPECT_NE(left->reason, "drained");
  EXPECT_FALSE(left->reason.empty());

  // After unsubscribe, nothing more arrives.
  self->send(caf::actor_cast<registry_actor>(router_), unsubscribe_atom::value, sub);
  ASSERT_TRUE(ask(uncordon_atom::value, "g1"));
  EXPECT_FALSE(log->next([](const registry_event& e) { return e.change == registry_change::state; }, 1500ms));
  caf::anon_send_exit(sub, caf::exit_reason::user_shutdown);
}

TEST_F(registry_test, cordoned_groups_get_no_new_requests_until_uncordoned) {
  add_group("g1");
  add_group("g2");
  auto c = ask(cordon_atom::value, "g1");
  ASSERT_TRUE(c) << sys_.render(c.error());
  EXPECT_EQ(c->state, group_state::cordoned);
  for (int64_t id = 1; id <= 4; ++id) EXPECT_EQ(run(id, 2).finish, finish_reason::length);
  auto l = list();
  EXPECT_EQ(find(l, "g1")->routed, 0);
  EXPECT_EQ(find(l, "g2")->routed, 4);
  EXPECT_EQ(find(l, "g1")->state, group_state::cordoned);
  EXPECT_EQ(view_->serving_groups(), 1u);
  EXPECT_EQ(view_->live_groups(), 2u);

  // Both cordoned: nothing can take a request.
  ASSERT_TRUE(ask(cordon_atom::value, "g2"));
  const outcome refused = run(10, 2);
  EXPECT_EQ(refused.finish, finish_reason::error);
  EXPECT_EQ(refused.error.code, failure_code::unavailable);
  EXPECT_TRUE(refused.tokens.empty());

  auto u = ask(uncordon_atom::value, "g1");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->state, group_state::serving);
  EXPECT_EQ(run(11, 2).finish, finish_reason::length);
  EXPECT_EQ(find(list(), "g1")->routed, 1);
}

TEST_F(registry_test, drain_lets_the_running_request_finish_then_stops_the_group) {
  auto leader = add_group("g1");
  auto log = std::make_shared<event_log>();
  auto sub = spawn_subscriber(sys_, log);
  {
    caf::scoped_actor self{sys_};
    self->request(caf::actor_cast<registry_actor>(router_), 10s, subscribe_atom::value, sub)
        .receive([](std::vector<group_status>&) {}, [this](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
  }
  caf::scoped_actor watcher{sys_};
  watcher->monitor(leader);

  // A long request in flight, then the drain (long enough that it cannot finish before the drain
  // arrives, even in the slower sanitized build: 48 tokens did once in five there).
  auto channel = streams_->open(7);
  request r;
  r.id = 7;
  r.prompt = {5, 6, 7};
  r.max_tokens = 1000;
  r.sampling.temperature = 0;
  r.stop.ignore_eos = true;
  door_->submit(r, cache_key{});
  std::vector<int32_t> tokens;
  const auto first = clock_type::now() + 10s;
  while (tokens.empty() && clock_type::now() < first) {
    for (auto& c : channel->drain()) tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
    std::this_thread::sleep_for(1ms);
  }
  ASSERT_FALSE(tokens.empty());
  auto d = ask(drain_atom::value, "g1");
  ASSERT_TRUE(d) << sys_.render(d.error());
  EXPECT_EQ(d->state, group_state::draining);
  EXPECT_EQ(d->in_flight, 1);

  // Nothing new reaches a draining group.
  const outcome refused = run(8, 2);
  EXPECT_EQ(refused.error.code, failure_code::unavailable);
  // It cannot be uncordoned back.
  EXPECT_FALSE(ask(uncordon_atom::value, "g1"));

  // The running request ends normally, with every token.
  finish_reason finish = finish_reason::none;
  const auto deadline = clock_type::now() + 30s;
  while (finish == finish_reason::none && clock_type::now() < deadline) {
    for (auto& c : channel->drain()) {
      tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
      finish = c.finish;
    }
    std::this_thread::sleep_for(5ms);
  }
  EXPECT_EQ(finish, finish_reason::length);
  EXPECT_EQ(tokens.size(), 1000u);

  // Then the leader quits normally and the group leaves the registry as drained.
  bool down = false;
  watcher->receive(
      [&down](caf::down_msg& dm) {
        down = true;
        EXPECT_EQ(dm.reason, caf::exit_reason::normal);
      },
      caf::after(10s) >> [] {});
  EXPECT_TRUE(down);
  auto left = log->next([](const registry_event& e) { return e.change == registry_change::left; });
  ASSERT_TRUE(left);
  EXPECT_EQ(left->reason, "drained");
  EXPECT_TRUE(list().empty());
  caf::anon_send_exit(sub, caf::exit_reason::user_shutdown);
}

TEST_F(registry_test, an_unknown_group_is_an_error_naming_it) {
  add_group("g1");
  for (auto e : {ask(cordon_atom::value, "nope"), ask(uncordon_atom::value, "nope"), ask(drain_atom::value, "nope")}) {
    ASSERT_FALSE(e);
    EXPECT_NE(sys_.render(e.error()).find("'nope'"), std::string::npos) << sys_.render(e.error());
  }
  EXPECT_EQ(list().size(), 1u);
}

TEST_F(registry_test, a_remote_node_is_refused_and_subscribers_are_bounded) {
  add_group("g1");
  // Another node that reached the cluster port (as a worker does) may not steer or read the registry.
  auto port = sys_.middleman().publish(router_, 0, "127.0.0.1", true);
  ASSERT_TRUE(port) << sys_.render(port.error());
  node_config other_cfg;
  caf::actor_system other{other_cfg};
  auto remote = other.middleman().remote_actor<registry_actor>("127.0.0.1", *port);
  ASSERT_TRUE(remote) << other.render(remote.error());
  caf::scoped_actor peer{other};
  for (const char* verb : {"drain", "list"}) {
    std::string error;
    if (std::string_view(verb) == "drain")
      peer->request(*remote, 10s, drain_atom::value, std::string("g1"))
          .receive([](group_status&) {}, [&error, &other](caf::error& e) { error = other.render(e); });
    else
      peer->request(*remote, 10s, list_atom::value)
          .receive([](std::vector<group_status>&) {}, [&error, &other](caf::error& e) { error = other.render(e); });
    EXPECT_NE(error.find(std::string("registry ") + verb + ": refused"), std::string::npos) << verb << ": " << error;
  }
  EXPECT_EQ(find(list(), "g1")->state, group_state::serving);

  // At most 64 subscribers.
  auto log = std::make_shared<event_log>();
  std::vector<registry_subscriber_actor> subs;
  caf::scoped_actor self{sys_};
  std::string error;
  for (int i = 0; i < 65; ++i) {
    subs.push_back(spawn_subscriber(sys_, log));
    self->request(caf::actor_cast<registry_actor>(router_), 10s, subscribe_atom::value, subs.back())
        .receive([](std::vector<group_status>&) {}, [&error, this](caf::error& e) { error = sys_.render(e); });
    if (i < 64) {
      EXPECT_TRUE(error.empty()) << i << ": " << error;
    }
  }
  EXPECT_NE(error.find("already has 64 subscribers"), std::string::npos) << error;
  for (auto& s : subs) caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}

TEST_F(registry_test, a_leader_takes_stop_from_its_router_only) {
  auto leader = add_group("g1");
  caf::scoped_actor stranger{sys_};
  stranger->send(leader, stop_atom::value);
  std::this_thread::sleep_for(200ms);
  // Still serving: a request runs to its end.
  const outcome r = run(1, 3);
  EXPECT_EQ(r.finish, finish_reason::length);
  EXPECT_EQ(r.tokens.size(), 3u);
  EXPECT_EQ(list().size(), 1u);
}

}  // namespace
}  // namespace troupe::router
