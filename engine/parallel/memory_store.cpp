// The in-process rendezvous store: a map under a mutex, with a condition variable for waiters.
// For ranks that are threads of one process (tests, `troupe generate --tp N` on CPU).
#include <condition_variable>
#include <map>
#include <mutex>

#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::engine::parallel {
namespace {

class memory_store final : public rendezvous_store {
 public:
  [[nodiscard]] expected<void> set(const std::string& key, std::span<const std::byte> value) override {
    {
      std::lock_guard lock(mutex_);
      values_[key].assign(value.begin(), value.end());
    }
    changed_.notify_all();
    return {};
  }

  [[nodiscard]] expected<std::vector<std::byte>> get(const std::string& key) override {
    std::lock_guard lock(mutex_);
    auto it = values_.find(key);
    if (it == values_.end()) return fail("rendezvous store: key '" + key + "' is not set");
    return it->second;
  }

  [[nodiscard]] expected<void> wait(const std::vector<std::string>& keys, std::chrono::milliseconds timeout) override {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    std::unique_lock lock(mutex_);
    for (const auto& key : keys) {
      auto present = [this, &key] { return values_.count(key) != 0; };
      if (!changed_.wait_until(lock, deadline, present))
        return fail("rendezvous store: key '" + key + "' not set within " + std::to_string(timeout.count()) +
                    " ms");
    }
    return {};
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::map<std::string, std::vector<std::byte>> values_;
};

}  // namespace

std::shared_ptr<rendezvous_store> make_memory_store() { return std::make_shared<memory_store>(); }

}  // namespace troupe::engine::parallel
