// Building a shard group on this node: load the model, make the backend, the forward pass and the
// engine (its paged KV cache sized from the budget), and describe the group for the router.
#pragma once

#include <memory>
#include <string>

#include "common/cluster_messages.hpp"
#include "common/expected.hpp"
#include "engine/llm_engine.hpp"
#include "gpu_actor/leader.hpp"

namespace troupe::gpu_actor {

struct worker_options {
  std::string model_path;
  std::string model_name;      // what clients call it
  std::string revision;        // must equal the router's
  std::string group_name;      // unique in the cluster
  int threads = 0;             // CPU backend threads (0 = all cores)
  int tp = 1;                  // ranks; > 1 is not built yet (tensor parallelism)
  engine::engine_config engine;
};

// Loads everything (minutes for a large model; seconds for the tiny ones) and fills `info`.
// Errors name the model file or the budget that did not fit.
[[nodiscard]] expected<std::shared_ptr<leader_resources>> load_worker(const worker_options& options,
                                                                      cluster::group_info& info);

}  // namespace troupe::gpu_actor
