// Whether this node's front ends take new requests. While the node drains (SIGTERM / Ctrl-C) a new
// request is refused as unavailable with a Retry-After hint, and /health says "draining" so that a
// load balancer stops sending here; requests already admitted run on.
// Threading: the kj thread of the front ends only.
#pragma once

#include <optional>
#include <string>

#include "common/failure.hpp"

namespace troupe::frontend {

class admission {
 public:
  // From now on new requests are refused; clients may retry (elsewhere) after `retry_after_s`.
  void start_draining(int32_t retry_after_s) {
    draining_ = true;
    retry_after_s_ = retry_after_s;
  }
  [[nodiscard]] bool draining() const { return draining_; }

  // Why a new request may not start now; nullopt when it may.
  [[nodiscard]] std::optional<failure> admit() const {
    if (!draining_) return std::nullopt;
    return failure{failure_code::unavailable, "the server is shutting down and takes no new requests", {}, retry_after_s_};
  }

 private:
  bool draining_ = false;
  int32_t retry_after_s_ = 0;
};

}  // namespace troupe::frontend
