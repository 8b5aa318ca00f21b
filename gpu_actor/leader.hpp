// A shard group's leader: the actor that owns the engine and runs its step loop while there is work
// (a step blocks its scheduler thread for a whole forward pass), streaming each step's tokens to the
// requests' owners and publishing a load report every second.
#pragma once

#include <caf/actor_system.hpp>
#include <memory>
#include <thread>
#include <vector>

#include "common/actors.hpp"
#include "engine/backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/llm_engine.hpp"
#include "engine/model/model.hpp"
#include "engine/parallel/communicator.hpp"

namespace troupe::gpu_actor {

// Everything a shard group's rank 0 needs, in construction order (the engine refers to the
// forward pass, which refers to the backend, the model and, with tp > 1, the communicator), plus
// the group's thread ranks when they run in this process.
struct leader_resources {
  std::shared_ptr<const engine::model> model;
  std::unique_ptr<engine::parallel::communicator> control;  // the group's plans (Gloo); null for tp = 1
  std::unique_ptr<engine::backend> backend;
  std::unique_ptr<engine::parallel::communicator> comm;     // NCCL all-reduces on GPUs; null on CPU
  std::unique_ptr<engine::llama_forward> forward;
  std::unique_ptr<engine::llm_engine> engine;
  std::vector<std::thread> ranks;  // thread ranks 1 .. tp-1 (run_follower_rank)
  // Tears down in reverse order: the engine's destruction sends the ranks stop, closing rank 0's
  // communicator ends a failed group's waits at once, and then the rank threads are joined.
  ~leader_resources();
};

// Spawns the leader. `load_sink` (may be invalid) receives the load report every second.
[[nodiscard]] cluster::gpu_leader_actor spawn_leader(caf::actor_system& system,
                                                     std::shared_ptr<leader_resources> resources,
                                                     cluster::group_info info, cluster::load_sink_actor load_sink);

}  // namespace troupe::gpu_actor
