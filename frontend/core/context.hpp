// What a node's client-facing servers (HTTP and Cap'n Proto RPC) share: the model, the door to
// the router actor, the streams back from it, the cluster snapshot, metrics, request ids, API keys and the
// cache policy. Owned by the node's router role (cli/router_role.cpp), whose members it refers to;
// everything referenced outlives the servers.
#pragma once

#include <memory>

#include "common/actors.hpp"
#include "common/metrics.hpp"
#include "frontend/core/admission.hpp"
#include "frontend/core/api_keys.hpp"
#include "frontend/core/completion_session.hpp"
#include "frontend/core/model_frontend.hpp"
#include "frontend/core/request_ids.hpp"
#include "frontend/core/stream_channel.hpp"
#include "frontend/core/work_pool.hpp"
#include "router/cluster_view.hpp"
#include "router/router_door.hpp"

namespace troupe::frontend {

struct frontend_context {
  const model_frontend* model = nullptr;
  const router::router_door* door = nullptr;  // submit and cancel reach the router through it
  std::shared_ptr<stream_registry> streams;
  std::shared_ptr<router::cluster_view> view;
  metrics_registry* metrics = nullptr;
  request_ids* ids = nullptr;
  const api_keys* keys = nullptr;
  cache_policy cache;
  bool protect_metrics = false;  // /health and /metrics need a key too
  bool insecure_cluster = false; // the cluster port runs without TLS: /health warns
  admission* gate = nullptr;  // admission control: queue bounds, and refusals while the node drains
  work_pool* pool = nullptr;  // runs the template and tokenizer off the kj thread (required)
  int64_t request_timeout_ms = 0;  // every request's deadline (--request-timeout; 0: none)
};


}  // namespace troupe::frontend
