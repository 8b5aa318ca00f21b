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
#include <functional>
#include <memory>

#include "common/cluster_config.hpp"
#include "frontend/core/context.hpp"

namespace troupe::frontend::http {

struct http_options {
  size_t max_body_bytes = size_t(16) << 20;  // larger bodies get 413 (a 128k-token prompt as ids is ~1 MB)
};

class http_frontend {
 public:
  explicit http_frontend(frontend_context context, http_options options = {});
  ~http_frontend();

  // Serves on `where` until the returned promise is cancelled (destroyed); `on_bound` gets the
  // port actually bound (for port 0). Errors (address in use) reject the promise.
  [[nodiscard]] kj::Promise<void> listen(kj::AsyncIoContext& io, const cluster::host_port& where,
                                         std::function<void(uint16_t)> on_bound);

 private:
  class service;
  class error_handler;
  kj::Own<kj::HttpHeaderTable> table_;
  kj::Own<service> service_;
  kj::Own<error_handler> errors_;
};

}  // namespace troupe::frontend::http
