// The router's and the leaders' sender checks, tried the way an attacker on the cluster port would
// (a second actor system that connected to the router's published port without any credential, as
// with --insecure-cluster): it may not replace a group, learn the model's path from a refusal,
// submit or cancel requests, write into another group's stream or fake its load; a leader takes
// requests, aborts and stop from its own router only.
#include "tests/router/router_fixture.hpp"

#include <atomic>

namespace troupe::router {
namespace {

using namespace cluster;
using namespace fixture;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The attacker's own "leader": counts the requests it is sent.
gpu_leader_actor spawn_impostor(caf::actor_system& sys, std::shared_ptr<std::atomic<int>> requests) {
  return sys.spawn([requests](gpu_leader_actor::pointer) -> gpu_leader_actor::behavior_type {
    return {
        [requests](generate_atom, request&, token_sink_actor&) { ++*requests; },
        [](abort_atom, int64_t) {},
        [](stop_atom) {},
        [](leave_atom) {},
        [](load_atom) { return load_report{}; },
        [](step_atom) {},
        [](tick_atom) {},
    };
  });
}

// Records the chunks a token sink is sent.
token_sink_actor spawn_recorder(caf::actor_system& sys, std::shared_ptr<std::atomic<int>> chunks) {
  return sys.spawn([chunks](token_sink_actor::pointer) -> token_sink_actor::behavior_type {
    return {[chunks](tokens_atom, std::vector<token_chunk>& c) { *chunks += int(c.size()); }};
  });
}

class sender_checks : public router_fixture {
 protected:
  // Publishes the router on a loopback port and connects a second actor system to it.
  void connect_peer() {
    auto port = sys_.middleman().publish(router_, 0, "127.0.0.1", true);
    ASSERT_TRUE(port) << sys_.render(port.error());
    auto remote = peer_sys_.middleman().remote_actor<router_actor>("127.0.0.1", *port);
    ASSERT_TRUE(remote) << peer_sys_.render(remote.error());
    remote_ = *remote;
  }

  // The peer registers `info` with `leader`; the router's error, rendered (empty: accepted).
  std::string peer_register(group_info info, const gpu_leader_actor& leader) {
    caf::scoped_actor peer{peer_sys_};
    std::string error = "no answer";
    peer->request(remote_, 10s, register_atom::value, std::move(info), leader)
        .receive([&error](bool) { error.clear(); }, [&error, this](caf::error& e) { error = peer_sys_.render(e); });
    return error;
  }

  group_info info_named(const std::string& name) {
    group_info info;
    info.name = name;
    info.model = "tiny";
    info.revision = revision;
    info.max_context = 64;
    info.kv_capacity_tokens = 1024;
    info.max_running = 4;
    return info;
  }

  // Submits a long greedy request through the door and waits for its first token.
  std::shared_ptr<frontend::stream_channel> start_long(int64_t id, int32_t max_tokens, std::vector<int32_t>& tokens) {
    auto channel = streams_->open(id);
    request r;
    r.id = id;
    r.prompt = {5, 6, 7};
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    door_->submit(r, cache_key{});
    const auto deadline = clock_type::now() + 10s;
    while (tokens.empty() && clock_type::now() < deadline) {
      for (auto& c : channel->drain()) tokens.insert(tokens.end(), c.tokens.begin(), c.tokens.end());
      std::this_thread::sleep_for(1ms);
    }
    return channel;
  }

  node_config peer_cfg_;
  caf::actor_system peer_sys_{peer_cfg_};
  router_actor remote_;
};

TEST_F(sender_checks, a_peer_cannot_replace_a_group_or_learn_the_model_path_from_a_refusal) {
  add_group("g1");
  connect_peer();
  auto requests = std::make_shared<std::atomic<int>>(0);
  auto impostor = spawn_impostor(peer_sys_, requests);

  // The real group's name: refused, the real group stays.
  std::string error = peer_register(info_named("g1"), impostor);
  EXPECT_NE(error.find("a shard group named 'g1' is already registered"), std::string::npos) << error;
  // Another revision: refused without quoting the router's (it names the model's path).
  group_info other = info_named("evil");
  other.revision = "probe";
  error = peer_register(other, impostor);
  EXPECT_NE(error.find("serves another model revision than this router"), std::string::npos) << error;
  EXPECT_EQ(error.find("secret-models"), std::string::npos) << error;
  EXPECT_EQ(error.find(revision), std::string::npos) << error;
  // A leader that lives on another node than the sender: the peer's handle to the router's own
  // group, and this node registering the peer's impostor.
  error = peer_register(info_named("evil"), leaders_[0]);
  EXPECT_FALSE(error.empty());
  auto impostor_port = peer_sys_.middleman().publish(impostor, 0, "127.0.0.1", true);
  ASSERT_TRUE(impostor_port) << peer_sys_.render(impostor_port.error());
  auto impostor_here = sys_.middleman().remote_actor<gpu_leader_actor>("127.0.0.1", *impostor_port);
  ASSERT_TRUE(impostor_here) << sys_.render(impostor_here.error());
  {
    caf::scoped_actor self{sys_};
    error = "no answer";
    self->request(router_, 10s, register_atom::value, info_named("evil"), *impostor_here)
        .receive([&error](bool) { error.clear(); }, [&error, this](caf::error& e) { error = sys_.render(e); });
  }
  EXPECT_NE(error.find("a group registers its own leader"), std::string::npos) << error;

  const auto l = list();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].info.name, "g1");
  // Every request still goes to the real group and ends normally.
  for (int64_t id = 1; id <= 3; ++id) {
    const outcome r = run(id, 3);
    EXPECT_EQ(r.finish, finish_reason::length) << r.error.message;
    EXPECT_EQ(r.tokens.size(), 3u);
  }
  EXPECT_EQ(*requests, 0);
  caf::anon_send_exit(impostor, caf::exit_reason::user_shutdown);
}

TEST_F(sender_checks, a_peer_cannot_submit_cancel_or_write_into_a_stream_or_fake_a_load_report) {
  add_group("g1");
  connect_peer();

  // A request submitted over the cluster port is never routed.
  auto probe = streams_->open(4242);
  {
    caf::scoped_actor peer{peer_sys_};
    request r;
    r.id = 4242;
    r.prompt = {1, 2, 3};
    r.max_tokens = 4;
    peer->send(remote_, submit_atom::value, r, cache_key{});
    caf::anon_send(remote_, submit_atom::value, r, cache_key{});  // anonymous: no better
  }

  // A running request: the peer writes a finished chunk with its own tokens into its stream, tries
  // to cancel it and reports a fake load for its group.
  std::vector<int32_t> first;
  auto channel = start_long(7, 40, first);
  ASSERT_FALSE(first.empty());
  {
    caf::scoped_actor peer{peer_sys_};
    token_chunk stray;
    stray.id = 7;
    stray.tokens = {9, 9, 9};
    stray.finish = finish_reason::stop;
    peer->send(remote_, tokens_atom::value, std::vector<token_chunk>{stray});
    peer->send(remote_, cancel_atom::value, int64_t(7));
    load_report fake;
    fake.group = "g1";
    fake.running = 999;
    peer->send(remote_, load_atom::value, fake);
    peer->send(remote_, leave_atom::value, std::string("g1"));  // only g1's leader may drain g1
    peer->send(remote_, deadline_atom::value, int64_t(7));        // only the router ends it at a deadline
  }
  {
    caf::scoped_actor local{sys_};  // nor may another actor of the router's own node
    local->send(router_, deadline_atom::value, int64_t(7));
  }
  const outcome r = finish(7, channel, first);
  EXPECT_EQ(r.finish, finish_reason::length) << r.error.message;
  EXPECT_EQ(r.tokens.size(), 40u);
  // The same request alone gives the same greedy tokens: none came from the peer.
  std::vector<int32_t> again_first;
  auto again = start_long(8, 40, again_first);
  EXPECT_EQ(finish(8, again, again_first).tokens, r.tokens);

  EXPECT_TRUE(probe->drain().empty());
  streams_->close(4242);
  const auto l = list();
  ASSERT_EQ(l.size(), 1u);
  EXPECT_EQ(l[0].routed, 2);  // requests 7 and 8 only
  EXPECT_NE(l[0].load.running, 999);
  EXPECT_EQ(l[0].state, group_state::serving);
}

// A router that holds requests while no group serves (scale from zero).
class sender_checks_holding : public sender_checks {
 protected:
  void configure(router_options& o) override { o.hold_s = 60; }
};

// Only the router's own timer ends a held request: a hold timeout sent by a peer or by another
// actor of its node leaves it waiting, and it is served once a group joins.
TEST_F(sender_checks_holding, only_the_router_ends_a_held_request) {
  connect_peer();
  auto channel = streams_->open(9);
  request r;
  r.id = 9;
  r.prompt = {1, 2, 3, 4};
  r.max_tokens = 5;
  r.sampling.temperature = 0;
  r.stop.ignore_eos = true;
  door_->submit(r, cache_key{});
  {
    caf::scoped_actor peer{peer_sys_};
    peer->send(remote_, hold_atom::value, int64_t(9));
  }
  {
    caf::scoped_actor local{sys_};
    local->send(router_, hold_atom::value, int64_t(9));
  }
  std::this_thread::sleep_for(300ms);
  EXPECT_TRUE(channel->drain().empty()) << "the held request was ended by someone else's hold timeout";
  add_group("g1");
  const outcome out = finish(9, channel, {});
  EXPECT_EQ(out.finish, finish_reason::length) << out.error.message;
  EXPECT_EQ(out.tokens.size(), 5u);
}

TEST_F(sender_checks, a_leader_takes_requests_and_aborts_from_its_router_only) {
  auto leader = add_group("g1");
  auto received = std::make_shared<std::atomic<int>>(0);
  auto sink = spawn_recorder(sys_, received);
  std::vector<int32_t> first;
  auto channel = start_long(11, 40, first);
  ASSERT_FALSE(first.empty());
  {
    caf::scoped_actor stranger{sys_};
    request r;
    r.id = 12;
    r.prompt = {1, 2, 3};
    r.max_tokens = 4;
    stranger->send(leader, generate_atom::value, r, sink);
    stranger->send(leader, abort_atom::value, int64_t(11));
  }
  const outcome out = finish(11, channel, first);
  EXPECT_EQ(out.finish, finish_reason::length) << out.error.message;
  EXPECT_EQ(out.tokens.size(), 40u);
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(*received, 0);
  caf::anon_send_exit(sink, caf::exit_reason::user_shutdown);
}

}  // namespace
}  // namespace troupe::router
