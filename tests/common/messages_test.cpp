// Every type registered with the actor system (common/cluster_config.cpp) survives the wire: each is
// filled with a value in every field, serialized as CAF sends it between nodes, deserialized both as
// the type and by its registered name (as a remote node decodes it), and compared. Field order in
// inspect() is the wire format, so a field left out of inspect() or read back in another order
// fails here. A type registered without a case here fails the completeness check.
#include <gtest/gtest.h>

#include <caf/all.hpp>
#include <set>

#include "common/actors.hpp"
#include "common/cluster_config.hpp"

namespace troupe::cluster {
namespace {

class messages_test : public ::testing::Test {
 public:
  template <class T>
  void round_trip(const std::string& name, T x) {
    SCOPED_TRACE(name);
    tested_.insert(name);
    std::vector<char> buf;
    caf::binary_serializer sink{sys_, buf};
    ASSERT_FALSE(sink(x));
    T y;
    caf::binary_deserializer source{sys_, buf};
    ASSERT_FALSE(source(y));
    EXPECT_EQ(source.remaining(), 0u);
    EXPECT_TRUE(x == y) << caf::deep_to_string(x) << "\n" << caf::deep_to_string(y);
    EXPECT_FALSE(T{} == x) << "the test value leaves every field at its default";
    auto by_name = sys_.types().make_value(name);
    ASSERT_NE(by_name, nullptr) << "not registered";
    caf::binary_deserializer named{sys_, buf};
    ASSERT_FALSE(by_name->load(named));
    EXPECT_EQ(by_name->stringify(), caf::deep_to_string(x));
  }

  // Actor handles travel as actor addresses; here only their registration is checked.
  void handle(const std::string& name) {
    tested_.insert(name);
    EXPECT_NE(sys_.types().make_value(name), nullptr) << name;
  }

  node_config cfg_;
  caf::actor_system sys_{cfg_};
  std::set<std::string> tested_;
};

sampling_params some_sampling() {
  return {0.7f, 0.9f, 40, 0.05f, 1.1f, 0.5f, -0.25f, 1234567890123ull, 3};
}

token_chunk some_chunk() {
  token_chunk c;
  c.id = (int64_t(7) << 32) | 9;
  c.sample = 2;
  c.tokens = {5, 6, 7};
  c.logprobs = {{5, -0.5f, {5, 9}, {-0.5f, -2.0f}}};
  c.finish = finish_reason::error;
  c.error = {failure_code::context_length, "too long", "max_tokens", 7};
  return c;
}

group_info some_group() {
  return {"host:1/0", "tiny", "rev@1:2", 2048, 16, 4096, 64, 2};
}

load_report some_load() {
  return {"host:1/0", 3, 4, 10, 256, 2, 0.5, 1000, 42.5, 0.25};
}

// Every value type, each with every field set.
void all_cases(messages_test& t);

TEST_F(messages_test, every_registered_type_round_trips_field_for_field) { all_cases(*this); }

TEST_F(messages_test, every_registration_is_covered) {
  for (const char* h : {"troupe.gpu_leader_actor", "troupe.cache_actor", "troupe.router_actor", "troupe.token_sink_actor",
                        "troupe.rendezvous_actor", "troupe.registry_actor", "troupe.registry_subscriber_actor"})
    handle(h);
  all_cases(*this);
  for (const auto& [name, factory] : cfg_.value_factories_by_name) {
    if (name.rfind("troupe.", 0) != 0) continue;  // CAF's own, and the vector<> / stream<> forms
    EXPECT_TRUE(tested_.count(name)) << name << " is registered but has no round-trip case here";
  }
}

void all_cases(messages_test& t) {
  request r;
  r.id = 77;
  r.prompt = {1, 2, 3};
  r.max_tokens = 9;
  r.sampling = some_sampling();
  r.stop = {{2, 13}, true, {"\n\n", "END"}};
  r.skip_special_tokens = false;
  r.n = 3;
  r.priority = -1;
  r.resumed = 2;
  r.tenant = "team-a";
  r.deadline_ms = 600000;
  t.round_trip("troupe.request", r);

  t.round_trip("troupe.token_logprob", token_logprob{11, -1.5f, {11, 12}, {-1.5f, -3.0f}});
  t.round_trip("troupe.token_chunk", some_chunk());
  t.round_trip("troupe.group_info", some_group());
  t.round_trip("troupe.load_report", some_load());

  group_status g{some_group(), group_state::draining, some_load(), 3, 120, 17};
  t.round_trip("troupe.group_status", g);
  t.round_trip("troupe.registry_event", registry_event{registry_change::left, g, "drained"});

  t.round_trip("troupe.cache_key", cache_key{"canonical bytes", 0xfeedbeefull});
  cache_entry e{{some_chunk(), some_chunk()}};
  e.samples[1].sample = 1;
  t.round_trip("troupe.cache_entry", e);
  t.round_trip("troupe.cache_lookup", cache_lookup{true, e});
  t.round_trip("troupe.cache_stats", cache_stats{1, 2, 3, 4, 5, 6, 7, true});

  // A seed of none must come back as none, not as 0.
  request unseeded;
  unseeded.prompt = {1};
  t.round_trip("troupe.request", unseeded);
}

}  // namespace
}  // namespace troupe::cluster
