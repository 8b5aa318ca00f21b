// Request ids: a random positive 63-bit number per request from the kernel's generator, so that an
// id seen by a worker (or guessed) says nothing about the next one, and ids of routers that share
// workers do not meet. Thread-safe (the HTTP and RPC servers of a node share one).
#pragma once

#include <sys/random.h>

#include <cstdint>
#include <random>

namespace troupe::frontend {

class request_ids {
 public:
  [[nodiscard]] int64_t next() {
    uint64_t bits = 0;
    // getrandom() for 8 bytes never returns short once the pool is ready (Linux >= 3.17); should it
    // fail, the per-call random_device is still unpredictable.
    if (::getrandom(&bits, sizeof bits, 0) != ssize_t(sizeof bits))
      bits = (uint64_t(std::random_device{}()) << 32) ^ std::random_device{}();
    const int64_t id = int64_t(bits >> 1);
    return id == 0 ? 1 : id;
  }
};

}  // namespace troupe::frontend
