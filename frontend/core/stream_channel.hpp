// The hand-over between the CAF actors and the kj event loop that serves clients: the router actor
// pushes each request's token chunks into its channel from a CAF thread; the request's handler on
// the kj thread waits for them without blocking the loop.
#pragma once

#include <kj/async.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/cluster_messages.hpp"

namespace troupe::frontend {

// One request's chunks, in arrival order.
// Threading: push() from any thread; ready() and drain() on the kj thread that created the channel.
class stream_channel {
 public:
  void push(cluster::token_chunk chunk);

  // Resolves when drain() has something to return (at once if it already has).
  [[nodiscard]] kj::Promise<void> ready();

  [[nodiscard]] std::vector<cluster::token_chunk> drain();

 private:
  std::mutex mutex_;
  std::vector<cluster::token_chunk> queue_;
  kj::Own<kj::CrossThreadPromiseFulfiller<void>> waiter_;
};

// The open channels of this node's front ends, by request id. Thread-safe.
class stream_registry {
 public:
  [[nodiscard]] std::shared_ptr<stream_channel> open(int64_t id);
  // No more chunks are wanted for `id` (the request ended or its client left).
  void close(int64_t id);
  // Delivers each chunk to its channel; false when no channel is open for it (nobody listens).
  bool deliver(cluster::token_chunk chunk);
  [[nodiscard]] size_t size() const;
  // Ends every open request with `why` (the node's drain deadline has passed).
  void fail_all(const failure& why);

 private:
  mutable std::mutex mutex_;
  std::unordered_map<int64_t, std::shared_ptr<stream_channel>> channels_;
};

}  // namespace troupe::frontend
