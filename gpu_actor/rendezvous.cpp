// The rendezvous actor and its store client (see rendezvous.hpp).
#include "gpu_actor/rendezvous.hpp"

#include <caf/all.hpp>
#include <thread>
#include <unordered_map>

namespace troupe::gpu_actor {

using namespace cluster;

namespace {

struct rendezvous_state {
  std::unordered_map<std::string, std::string> keys;
  static inline const char* name = "troupe.rendezvous";
};

constexpr size_t max_key = 1024, max_value = 64 * 1024;

class caf_store final : public engine::parallel::rendezvous_store {
 public:
  caf_store(caf::actor_system& system, rendezvous_actor store, std::chrono::milliseconds timeout)
      : system_(system), store_(std::move(store)), timeout_(timeout) {}

  expected<void> set(const std::string& key, std::span<const std::byte> value) override {
    caf::scoped_actor self{system_};
    expected<void> out;
    self->request(store_, timeout_, set_key_atom::value, key,
                  std::string(reinterpret_cast<const char*>(value.data()), value.size()))
        .receive([](bool) {}, [this, &out, &key](caf::error& e) {
          out = fail("rendezvous: publishing '" + key + "' failed: " + system_.render(e));
        });
    return out;
  }

  expected<std::vector<std::byte>> get(const std::string& key) override {
    caf::scoped_actor self{system_};
    expected<std::vector<std::byte>> out = error{};
    self->request(store_, timeout_, get_key_atom::value, key)
        .receive(
            [&out](std::string& v) {
              const auto* p = reinterpret_cast<const std::byte*>(v.data());
              out = std::vector<std::byte>(p, p + v.size());
            },
            [this, &out, &key](caf::error& e) { out = fail("rendezvous: '" + key + "': " + system_.render(e)); });
    return out;
  }

  expected<void> wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    return engine::parallel::poll_for_keys(keys, timeout, std::chrono::milliseconds(20),
                                           [this](const std::string& key) -> expected<void> {
                                             auto v = get(key);
                                             if (!v) return v.err();
                                             return {};
                                           });
  }

 private:
  caf::actor_system& system_;
  rendezvous_actor store_;
  std::chrono::milliseconds timeout_;
};

}  // namespace

rendezvous_actor spawn_rendezvous(caf::actor_system& system) {
  return system.spawn([](rendezvous_actor::stateful_pointer<rendezvous_state> self) -> rendezvous_actor::behavior_type {
    return {
        [self](set_key_atom, std::string& key, std::string& value) -> caf::result<bool> {
          if (key.empty() || key.size() > max_key || value.size() > max_value)
            return caf::make_error(caf::sec::runtime_error, "rendezvous: key or value too large or empty key");
          auto [it, fresh] = self->state.keys.try_emplace(key, value);
          if (!fresh && it->second != value)
            return caf::make_error(caf::sec::runtime_error,
                                   "rendezvous: '" + key + "' is already published with another value "
                                   "(two ranks with the same --rank?)");
          return true;
        },
        [self](get_key_atom, const std::string& key) -> caf::result<std::string> {
          auto it = self->state.keys.find(key);
          if (it == self->state.keys.end())
            return caf::make_error(caf::sec::runtime_error, "not published yet");
          return it->second;
        },
    };
  });
}

std::shared_ptr<engine::parallel::rendezvous_store> make_caf_store(caf::actor_system& system, rendezvous_actor store,
                                                                   std::chrono::milliseconds request_timeout) {
  return std::make_shared<caf_store>(system, std::move(store), request_timeout);
}

expected<rendezvous_actor> find_rendezvous(caf::actor_system& system, const router_actor& router,
                                           const std::string& group, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string last;
  while (true) {
    caf::scoped_actor self{system};
    rendezvous_actor found;
    self->request(router, std::chrono::seconds(5), rendezvous_atom::value, group)
        .receive([&found](rendezvous_actor& r) { found = std::move(r); },
                 [&last, &system](caf::error& e) { last = system.render(e); });
    if (found) return found;
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return fail("--group " + group + ": its leader (the --rank 0 node) did not publish the group's rendezvous at the "
              "router within " + std::to_string(timeout.count() / 1000) + " s (" + last + ")");
}

}  // namespace troupe::gpu_actor
