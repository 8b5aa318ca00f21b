// The CAF actor-system configuration every Troupe node uses: the middleman (remoting), every cluster
// message type registered, and heartbeats with a connection timeout so a dead peer is noticed.
#pragma once

#include <caf/actor_system_config.hpp>
#include <chrono>
#include <string>

#include "common/expected.hpp"

namespace troupe::cluster {

struct liveness {
  // CAF's defaults are both off: a peer that hangs, or vanishes without closing its socket (power
  // loss, a network partition), would never be noticed. A peer killed outright closes its socket
  // and is noticed at once regardless.
  std::chrono::milliseconds heartbeat{500};
  std::chrono::milliseconds connection_timeout{3000};
};

class node_config : public caf::actor_system_config {
 public:
  // `threads`: CAF scheduler threads (a shard group's leader occupies one while it runs a step).
  explicit node_config(liveness l = {}, size_t threads = 2);
};

struct host_port {
  std::string host;
  uint16_t port = 0;
};

// "HOST:PORT" (HOST may be empty for all interfaces only where the caller allows it; [v6]:PORT too).
[[nodiscard]] expected<host_port> parse_host_port(const std::string& text, const std::string& what);

}  // namespace troupe::cluster
