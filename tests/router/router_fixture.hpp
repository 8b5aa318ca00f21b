// The router tests' fixture: a real actor system with the real router actor, shard-group leaders
// running a tiny model on the CPU, the front end's door and streams, and a subscriber that records
// registry events.
#pragma once

#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "common/actors.hpp"
#include "common/cluster_config.hpp"
#include "gpu_actor/leader.hpp"
#include "gpu_actor/worker.hpp"
#include "frontend/core/stream_channel.hpp"
#include "router/router_actor.hpp"
#include "router/router_door.hpp"
#include "tests/engine/test_models.hpp"

namespace troupe::router::fixture {

using namespace cluster;
using clock_type = std::chrono::steady_clock;
using namespace std::chrono_literals;

// The events a subscriber actor received, for the test thread to wait on.
class event_log {
 public:
  void push(registry_event e) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(e));
    cv_.notify_all();
  }
  // The first event not yet taken that `match` accepts, within `timeout` (earlier ones are skipped).
  template <class F>
  std::optional<registry_event> next(F match, std::chrono::milliseconds timeout = 10s) {
    std::unique_lock lock(mutex_);
    std::optional<registry_event> found;
    cv_.wait_for(lock, timeout, [&] {
      while (!events_.empty()) {
        registry_event e = std::move(events_.front());
        events_.pop_front();
        if (match(e)) {
          found = std::move(e);
          return true;
        }
      }
      return false;
    });
    return found;
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<registry_event> events_;
};

inline registry_subscriber_actor spawn_subscriber(caf::actor_system& sys, std::shared_ptr<event_log> log) {
  return sys.spawn([log](registry_subscriber_actor::pointer) -> registry_subscriber_actor::behavior_type {
    return {[log](registry_atom, registry_event& e) { log->push(std::move(e)); }};
  });
}

// One request's chunks as the front end would get them.
struct outcome {
  std::vector<int32_t> tokens;
  finish_reason finish = finish_reason::none;
  failure error;
};

class router_fixture : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = test::tiny_model("registry_model");
    routing_options ro;
    auto policy = make_routing_policy("least-outstanding", ro);
    ASSERT_TRUE(policy) << policy.message();
    router_options o;
    o.revision = revision;
    o.policy = std::move(*policy);
    configure(o);
    router_ = spawn_router(
        sys_, std::move(o), [s = streams_](token_chunk c) { return s->deliver(std::move(c)); }, view_);
    door_ = std::make_unique<router_door>(sys_, router_);
  }

  // A test's own router options (hold time, group queue, ...), set before the router is spawned.
  virtual void configure(router_options&) {}

  void TearDown() override {
    for (auto& l : leaders_) caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(router_, caf::exit_reason::user_shutdown);
    door_.reset();
  }

  // Loads a shard group of the tiny model and registers it with the router.
  gpu_leader_actor add_group(const std::string& name) {
    gpu_actor::worker_options w;
    w.model_path = model_;
    w.model_name = "tiny";
    w.revision = revision;
    w.group_name = name;
    w.threads = 1;
    w.engine.kv_memory_bytes = int64_t(32) << 20;
    group_info info;
    auto res = gpu_actor::load_worker(w, info);
    EXPECT_TRUE(res) << res.message();
    if (!res) return {};
    auto leader = gpu_actor::spawn_leader(sys_, std::move(*res), info, caf::actor_cast<load_sink_actor>(router_));
    caf::scoped_actor self{sys_};
    bool joined = false;
    self->request(router_, 10s, register_atom::value, info, leader)
        .receive([&joined](bool) { joined = true; }, [this](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
    EXPECT_TRUE(joined);
    leaders_.push_back(leader);
    return leader;
  }

  // Sends a request through the router and waits for it to end.
  outcome run(int64_t id, int32_t max_tokens) {
    auto channel = streams_->open(id);
    request r;
    r.id = id;
    r.prompt = {1, 2, 3, 4};
    r.max_tokens = max_tokens;
    r.sampling.temperature = 0;
    r.stop.ignore_eos = true;
    door_->submit(r, cache_key{});
    return finish(id, channel, {});
  }

  // Collects the rest of request `id`'s stream (after `tokens`, already taken) until it ends, and
  // closes it.
  outcome finish(int64_t id, const std::shared_ptr<frontend::stream_channel>& channel, std::vector<int32_t> tokens) {
    outcome out;
    out.tokens = std::move(tokens);
    const auto deadline = clock_type::now() + 30s;
    while (out.finish == finish_reason::none && clock_type::now() < deadline) {
      for (auto& c : channel->drain()) {
        out.tokens.insert(out.tokens.end(), c.tokens.begin(), c.tokens.end());
        if (c.finish != finish_reason::none) {
          out.finish = c.finish;
          out.error = c.error;
        }
      }
      std::this_thread::sleep_for(2ms);
    }
    streams_->close(id);
    return out;
  }

  template <class Atom>
  caf::expected<group_status> ask(Atom atom, const std::string& group) {
    caf::scoped_actor self{sys_};
    caf::expected<group_status> out = caf::make_error(caf::sec::request_timeout);
    self->request(caf::actor_cast<registry_actor>(router_), 10s, atom, group)
        .receive([&out](group_status& s) { out = std::move(s); }, [&out](caf::error& e) { out = std::move(e); });
    return out;
  }

  std::vector<group_status> list() {
    caf::scoped_actor self{sys_};
    std::vector<group_status> out;
    self->request(caf::actor_cast<registry_actor>(router_), 10s, list_atom::value)
        .receive([&out](std::vector<group_status>& l) { out = std::move(l); },
                 [this](caf::error& e) { ADD_FAILURE() << sys_.render(e); });
    return out;
  }

  const group_status* find(const std::vector<group_status>& l, const std::string& name) {
    for (const auto& g : l)
      if (g.info.name == name) return &g;
    return nullptr;
  }

  // Like a real one, the revision names the model's path: no refusal may quote it.
  static constexpr const char* revision = "/srv/secret-models/tiny@4096:1700000000";

  node_config cfg_{liveness{}, 3};
  caf::actor_system sys_{cfg_};
  std::shared_ptr<frontend::stream_registry> streams_ = std::make_shared<frontend::stream_registry>();
  std::shared_ptr<cluster_view> view_ = std::make_shared<cluster_view>();
  router_actor router_;
  std::unique_ptr<router_door> door_;
  std::vector<gpu_leader_actor> leaders_;
  std::string model_;
};

}  // namespace troupe::router::fixture
