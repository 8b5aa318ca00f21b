// One tensor-parallel rank of a shard group: its communicator (Gloo, connected through the group's
// rendezvous), its backend and its shard's forward pass. Rank 0 drives an engine over it (the
// leader); the others run the leader's steps (run_follower).
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

namespace troupe::engine {

struct rank_options {
  std::shared_ptr<const engine::model> model;  // the whole checkpoint, mapped; the rank keeps its slices
  int rank = 0;
  int tp = 1;
  std::string group;                   // namespaces the group's rendezvous keys
  std::string address = "127.0.0.1";   // where this rank listens for its peers (Gloo TCP)
  std::chrono::milliseconds timeout{10'000};  // every collective: a dead or hung peer fails the group within it
  std::chrono::milliseconds connect_timeout{10'000};  // waiting for every rank to join
  int threads = 1;                     // CPU backend threads of this rank
  std::string device = "cpu";          // make_backend's name: "cpu", or "cuda[:N]" (rank r drives GPU N + r)
  int64_t max_tokens = 256;            // tokens per step (the engine's max_batched_tokens)
  bool enforce_eager = false;          // no CUDA graphs for decode steps
};

// Members in construction order; destroyed in reverse (the forward pass refers to the others).
// On CPU one Gloo communicator carries both the leader's plans and the forward pass's all-reduces;
// on GPUs the all-reduces go through NCCL on device memory and the plans through Gloo (`control`).
struct rank_resources {
  std::unique_ptr<parallel::communicator> control;  // Gloo: the leader's plans (and the CPU all-reduces)
  std::unique_ptr<engine::backend> backend;
  std::unique_ptr<parallel::communicator> comm;     // the forward pass's all-reduces: `control` itself on CPU (null here), NCCL on GPUs
  std::unique_ptr<llama_forward> forward;
  [[nodiscard]] parallel::communicator& data() const { return comm ? *comm : *control; }
};

// Connects to the group (blocks until every rank has joined, or fails after the timeout) and
// builds the rank's shard. With a CUDA device, rank 0 also makes the NCCL unique id and hands it
// to the others through the same store. Errors name the rank and what failed (rendezvous,
// divisibility, device, load).
[[nodiscard]] expected<rank_resources> make_rank(parallel::rendezvous_store& store, const rank_options& o);

// A rank > 0 for its whole life: make_rank, then run_follower until the leader stops the group
// (returns {}) or the group fails (the error).
[[nodiscard]] expected<void> run_follower_rank(parallel::rendezvous_store& store, const rank_options& o);

}  // namespace troupe::engine
