// One tensor-parallel rank of a shard group: its communicator (Gloo, connected through the group's
// rendezvous), its backend and its shard's forward pass. Rank 0 drives an engine over it (the
// leader); the others run the leader's steps (engine::run_follower).
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "common/expected.hpp"
#include "engine/backend.hpp"
#include "engine/llama_forward.hpp"
#include "engine/model/model.hpp"
#include "engine/parallel/communicator.hpp"
#include "engine/parallel/rendezvous_store.hpp"

namespace troupe::gpu_actor {

struct rank_options {
  std::shared_ptr<const engine::model> model;  // the whole checkpoint, mapped; the rank keeps its slices
  int rank = 0;
  int tp = 1;
  std::string group;                   // namespaces the group's rendezvous keys
  std::string address = "127.0.0.1";   // where this rank listens for its peers (Gloo TCP)
  std::chrono::milliseconds timeout{10'000};  // every collective: a dead or hung peer fails the group within it
  std::chrono::milliseconds connect_timeout{10'000};  // waiting for every rank to join
  int threads = 1;                     // CPU backend threads of this rank
  int64_t max_tokens = 256;            // tokens per step (the engine's max_batched_tokens)
};

// Members in construction order; destroyed in reverse (the forward pass refers to the other two).
struct rank_resources {
  std::unique_ptr<engine::parallel::communicator> comm;
  std::unique_ptr<engine::backend> backend;
  std::unique_ptr<engine::llama_forward> forward;
};

// Connects to the group (blocks until every rank has joined, or fails after the timeout) and
// builds the rank's shard. Errors name the rank and what failed (rendezvous, divisibility, load).
[[nodiscard]] expected<rank_resources> make_rank(engine::parallel::rendezvous_store& store, const rank_options& o);

// A rank > 0 for its whole life: make_rank, then run_follower until the leader stops the group
// (returns {}) or the group fails (the error).
[[nodiscard]] expected<void> run_follower_rank(engine::parallel::rendezvous_store& store, const rank_options& o);

}  // namespace troupe::gpu_actor
