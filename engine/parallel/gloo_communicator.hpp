// The CPU communicator: Gloo collectives over TCP between ranks that are threads, processes or
// hosts, connected once through a rendezvous_store.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "engine/parallel/communicator.hpp"
#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::engine::parallel {

struct gloo_options {
  int rank = 0;
  int size = 1;
  // The address this rank listens on and publishes to its peers: loopback by default, so nothing
  // listens beyond this host unless configured. `interface` (a device name, "eth0") wins when set.
  std::string address = "127.0.0.1";
  std::string interface;
  // Bounds connecting (waiting for every peer's address and connection) and every wait inside a
  // collective: a dead, hung or absent peer becomes an error after about this long.
  std::chrono::milliseconds timeout{30'000};
  // When set, bounds connecting instead (ranks that start minutes apart), and `timeout` only the
  // collectives.
  std::chrono::milliseconds connect_timeout{0};
  // Namespaces this group's keys in the store, so several groups (or successive rendezvous of one
  // group after a failure) can share a store. Every rank of a group passes the same prefix.
  std::string prefix = "gloo";
};

// Connects rank `options.rank` to its `options.size - 1` peers (blocks until all have joined, or
// fails after the timeout) and returns its communicator. all_reduce_sum is Gloo's ring all-reduce
// (reduce-scatter then all-gather, so every rank gets bit-identical sums); broadcast and barrier
// are Gloo's. `store` is used only during this call.
//
// Side effect: SIGPIPE is set to ignored for the process (when it is at its default), because
// Gloo writes to sockets with writev and a peer that died would otherwise kill this process
// instead of failing the collective.
[[nodiscard]] expected<std::unique_ptr<communicator>> make_gloo_communicator(const gloo_options& options,
                                                                             rendezvous_store& store);

}  // namespace troupe::engine::parallel
