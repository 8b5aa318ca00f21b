// Building a shard group on this node: load the model, make the backend, the forward pass and the
// engine (its paged KV cache sized from the budget), and describe the group for the router.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/cluster_messages.hpp"
#include "common/expected.hpp"
#include "engine/llm_engine.hpp"
#include "engine/parallel/rendezvous_store.hpp"
#include "gpu_actor/leader.hpp"

namespace troupe::gpu_actor {

struct worker_options {
  std::string model_path;
  std::string model_name;      // what clients call it
  std::string revision;        // must equal the router's
  std::string group_name;      // unique in the cluster
  int threads = 0;             // CPU backend threads of the whole group (0 = all cores), split over its thread ranks
  int tp = 1;                  // ranks of the shard group
  std::string device = "cpu";  // make_backend's name: cpu, cuda, cuda:N (rank r on GPU N + r)
  // Where the ranks 1 .. tp-1 run: null = threads of this node (meeting in memory); otherwise they
  // are `troupe node --rank R` processes meeting through this store (the leader's CAF rendezvous).
  std::shared_ptr<engine::parallel::rendezvous_store> rank_store;
  std::string rank_address = "127.0.0.1";       // where this node's ranks listen for their peers
  std::chrono::milliseconds rank_timeout{10'000};  // every collective of the group
  std::chrono::milliseconds join_timeout{30'000};  // waiting for the ranks to join
  engine::engine_config engine;
};

// Loads everything (minutes for a large model; seconds for the tiny ones) and fills `info`. With
// tp > 1 it also forms the shard group: starts the thread ranks (or waits, up to rank_timeout, for
// the process ranks to join) and makes this thread rank 0. Errors name the model file, the budget
// that did not fit, or the rank that failed.
[[nodiscard]] expected<std::shared_ptr<leader_resources>> load_worker(const worker_options& options,
                                                                      cluster::group_info& info);

}  // namespace troupe::gpu_actor
