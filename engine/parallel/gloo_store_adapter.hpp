// Presents our rendezvous_store to Gloo as a gloo::rendezvous::Store, under a key prefix, turning
// our error values into the gloo::IoException that Gloo's rendezvous expects from a store.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include <gloo/rendezvous/store.h>

#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::engine::parallel {

// Internal to the Gloo communicator. Lives only for the rendezvous (connectFullMesh); `store` must
// outlive it. Waits without a timeout of their own use `default_timeout`.
class gloo_store_adapter final : public gloo::rendezvous::Store {
 public:
  gloo_store_adapter(rendezvous_store& store, std::string prefix, std::chrono::milliseconds default_timeout);

  void set(const std::string& key, const std::vector<char>& data) override;
  std::vector<char> get(const std::string& key) override;
  void wait(const std::vector<std::string>& keys) override;
  void wait(const std::vector<std::string>& keys, const std::chrono::milliseconds& timeout) override;

 private:
  [[nodiscard]] std::string full_key(const std::string& key) const;

  rendezvous_store& store_;
  std::string prefix_;
  std::chrono::milliseconds default_timeout_;
};

}  // namespace troupe::engine::parallel
