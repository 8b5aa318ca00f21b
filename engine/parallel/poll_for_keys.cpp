// poll_for_keys (see rendezvous_store.hpp).
#include <thread>

#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::engine::parallel {

expected<void> poll_for_keys(const std::vector<std::string>& keys, std::chrono::milliseconds timeout,
                             std::chrono::milliseconds interval,
                             const std::function<expected<void>(const std::string&)>& lookup) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (const auto& key : keys) {
    for (;;) {
      auto found = lookup(key);
      if (found) break;
      if (std::chrono::steady_clock::now() >= deadline)
        return fail("rendezvous store: key '" + key + "' not set within " + std::to_string(timeout.count()) + " ms (" +
                    found.message() + ")");
      std::this_thread::sleep_for(interval);
    }
  }
  return {};
}

}  // namespace troupe::engine::parallel
