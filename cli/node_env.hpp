// What the roles of one node share: its options, the actor system, the kj event loop, the metrics
// and the ports it listens on. Owned by run_node (cli/node.cpp), which outlives every role.
#pragma once

#include <caf/actor_system.hpp>
#include <kj/async-io.h>

#include "cli/node.hpp"
#include "common/cluster_config.hpp"
#include "common/metrics.hpp"

namespace troupe::cli {

struct node_env {
  const node_options& options;
  caf::actor_system& system;
  kj::AsyncIoContext& io;
  metrics_registry& metrics;  // declared before the actor system: actors may count into it until it ends
  node_ports& ports;          // filled as the roles bind
};

// Runs the loop until a listener has bound its port (`port` set by its callback) or failed.
[[nodiscard]] expected<void> wait_bound(kj::AsyncIoContext& io, kj::Promise<void>& serving, const uint16_t& port);

}  // namespace troupe::cli
