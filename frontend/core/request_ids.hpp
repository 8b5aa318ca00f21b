// Request ids unique across the routers that may share workers: this front end's random 31-bit
// nonce << 32 | a counter. Thread-safe (the HTTP and RPC servers of a node share one).
#pragma once

#include <atomic>
#include <cstdint>
#include <random>

namespace troupe::frontend {

class request_ids {
 public:
  request_ids() : nonce_(int64_t(std::random_device{}() & 0x7fffffff) << 32) {}
  [[nodiscard]] int64_t next() { return nonce_ | (counter_.fetch_add(1, std::memory_order_relaxed) & 0xffffffff); }

 private:
  const int64_t nonce_;
  std::atomic<int64_t> counter_{1};
};

}  // namespace troupe::frontend
