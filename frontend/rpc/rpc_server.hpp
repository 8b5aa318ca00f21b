// The Cap'n Proto client API (schema/troupe.capnp) beside the HTTP server, on the same kj loop and
// with the same model, router actor, validation, API keys and request ids: generate / chat streamed
// through the client's TokenSink with Cap'n Proto's flow control, models, health.
//
// Threading: everything runs on the kj event loop of the thread that calls listen(). Limits: each
// connection reads with explicit ReaderOptions (a larger message drops that connection) and an
// RPC flow limit. Cap'n Proto's flow limit stops reading *all* of a connection's messages while its
// unanswered calls exceed it, including the stream acknowledgements its generations wait on: a
// client that keeps more than flow_limit_words of calls in flight on one connection stalls that
// connection (only it); the limit is sized so that several maximal requests fit.
#pragma once

#include <kj/async-io.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>

#include "common/cluster_config.hpp"
#include "frontend/core/context.hpp"

namespace troupe::frontend::rpc {

struct rpc_options {
  // The largest message read, in 8-byte words: a 16 MiB prompt (the HTTP body limit) with room
  // for its parameters; a 128k-token prompt as ids is ~0.5 MiB. Also bounds the words a request's
  // reader may traverse (amplification defence).
  uint64_t traversal_limit_words = (uint64_t(17) << 20) / 8;
  int nesting_limit = 16;  // the schema nests 5 deep at most
  // Words of unanswered calls per connection before it stops reading (see above): four maximal
  // requests, or thousands of ordinary ones.
  size_t flow_limit_words = size_t(4) * ((size_t(17) << 20) / 8);
  // Before a client has authenticated: the bytes it may send or declare in all (preauth_stream.hpp),
  // and the time it has to do so; then the connection is closed.
  size_t preauth_bytes = 64 << 10;
  std::chrono::milliseconds auth_timeout{10000};
  size_t max_connections = 1024;  // open connections at once; more are closed at once
};

class rpc_frontend {
 public:
  explicit rpc_frontend(frontend_context context, rpc_options options = {});
  ~rpc_frontend();
  rpc_frontend(const rpc_frontend&) = delete;
  rpc_frontend& operator=(const rpc_frontend&) = delete;

  // Serves on `where` until the returned promise is destroyed (which closes every connection and
  // cancels their requests); `on_bound` gets the port actually bound (for port 0). Errors (address
  // in use) reject the promise. The frontend must outlive the promise.
  [[nodiscard]] kj::Promise<void> listen(kj::AsyncIoContext& io, const cluster::host_port& where,
                                         std::function<void(uint16_t)> on_bound);

  struct shared;  // what every connection's capabilities use (rpc_server.cpp)

 private:
  std::unique_ptr<shared> shared_;
};

}  // namespace troupe::frontend::rpc
