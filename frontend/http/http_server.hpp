// The OpenAI-compatible HTTP API on KJ HTTP: POST /v1/completions and /v1/chat/completions (whole or
// streamed as server-sent events), GET /v1/models, /health (ready only while a shard group is live)
// and /metrics (Prometheus text). Bodies are limited in size; every error is OpenAI's error JSON.
// With API keys set, every /v1 request needs "Authorization: Bearer KEY" (401 otherwise); /health
// and /metrics too with protect_metrics. "Cache-Control: no-cache" bypasses the response cache.
//
// Threading: runs on the kj event loop of the thread that calls listen(); talks to the router actor
// by message only, and reads the cluster through cluster_view snapshots, so it never blocks on CAF.
#pragma once

#include <kj/async-io.h>
#include <kj/compat/http.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>

#include "common/cluster_config.hpp"
#include "frontend/core/context.hpp"

namespace troupe::frontend::http {

// The listener's bounds (flags --http-*; defaults in DECISIONS.md's table). A connection that
// breaks a timeout is closed; over max_connections a new one gets 503 and is closed.
struct http_options {
  size_t max_body_bytes = size_t(16) << 20;  // larger bodies get 413 (a 128k-token prompt as ids is ~1 MB)
  std::chrono::milliseconds header_timeout{10000};  // the request line and headers, from the first byte
  std::chrono::milliseconds body_timeout{30000};    // the whole body, once the headers are in (408)
  std::chrono::milliseconds idle_timeout{5000};     // a kept-alive connection waiting for its next request
  size_t max_connections = 1024;                    // open connections at once
};

class http_frontend {
 public:
  explicit http_frontend(frontend_context context, http_options options = {});
  ~http_frontend();

  // Serves on `where` until the returned promise is cancelled (destroyed); `on_bound` gets the
  // port actually bound (for port 0). Errors (address in use) reject the promise.
  [[nodiscard]] kj::Promise<void> listen(kj::AsyncIoContext& io, const cluster::host_port& where,
                                         std::function<void(uint16_t)> on_bound);
  // Stops taking connections and requests, lets the responses being written finish, then closes
  // the connections; resolves when none is left. The listen() promise must still be alive.
  [[nodiscard]] kj::Promise<void> drain();

 private:
  class service;
  class error_handler;
  class connection_cap;
  kj::Own<kj::HttpHeaderTable> table_;
  kj::Own<service> service_;
  kj::Own<error_handler> errors_;
  kj::HttpServer* server_ = nullptr;  // owned by the listen() promise
  http_options options_;
};

}  // namespace troupe::frontend::http
