// The router role of a node: the served model's front end (tokenizer, template), the router actor
// published on the cluster port, and the client-facing servers on the node's kj loop (HTTP, and
// Cap'n Proto with --rpc). Destroyed: the servers close, then the router actor is stopped.
#pragma once

#include <chrono>
#include <memory>

#include "cli/node_env.hpp"
#include "common/actors.hpp"
#include "frontend/core/api_keys.hpp"
#include "frontend/core/model_frontend.hpp"
#include "frontend/core/request_ids.hpp"
#include "frontend/core/stream_channel.hpp"
#include "frontend/core/work_pool.hpp"
#include "frontend/http/http_server.hpp"
#include "router/cluster_view.hpp"
#include "router/router_door.hpp"

namespace troupe::cli {

class router_role {
 public:
  // Loads the model's tokenizer and template, checks the router's flags, spawns and publishes the
  // router, and binds HTTP (and RPC). `cache` may be invalid (no response cache). Errors name the
  // flag or the file.
  [[nodiscard]] static expected<std::unique_ptr<router_role>> start(node_env& env, cluster::cache_actor cache);
  ~router_role();
  router_role(const router_role&) = delete;
  router_role& operator=(const router_role&) = delete;

  [[nodiscard]] const cluster::router_actor& handle() const { return router_; }
  // What the router publishes for the front ends (groups, room, a failed model).
  [[nodiscard]] std::shared_ptr<router::cluster_view> view() const { return view_; }
  // Resolves (rejects) when a server fails; never while they serve. Taken once; the servers live
  // as long as the promise (or what holds it) does.
  [[nodiscard]] kj::Promise<void> take_serving() { return kj::mv(serving_); }

  // The node stops: new requests get 503 (Retry-After) and /health says "draining"; the open
  // requests run on until they end or `timeout` passes, when each still open is ended with an error
  // (an error event and [DONE] on a stream); then the HTTP server finishes writing and closes its
  // connections (at most 2 s more). The serving promise must still be alive.
  [[nodiscard]] kj::Promise<void> drain(kj::Timer& timer, std::chrono::milliseconds timeout);

 private:
  router_role() = default;
  std::unique_ptr<frontend::model_frontend> model_;
  frontend::api_keys keys_;
  frontend::request_ids ids_;
  std::shared_ptr<frontend::stream_registry> streams_ = std::make_shared<frontend::stream_registry>();
  std::shared_ptr<router::cluster_view> view_ = std::make_shared<router::cluster_view>();
  cluster::router_actor router_;
  std::unique_ptr<router::router_door> door_;  // the front ends' way in (after router_: gone before it)
  std::unique_ptr<frontend::admission> gate_;
  std::unique_ptr<frontend::work_pool> pool_;  // before http_: its jobs end before the servers go
  std::unique_ptr<frontend::http::http_frontend> http_;
  kj::Promise<void> serving_ = kj::NEVER_DONE;  // the servers' listen promises (the RPC server rides on it)
};

}  // namespace troupe::cli
