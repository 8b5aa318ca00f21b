// The GPU communicator: NCCL collectives on device memory, enqueued on the rank's CUDA stream,
// with every wait bounded so that a dead or hung peer fails the group instead of hanging it.
#pragma once

#include <cuda_runtime_api.h>

#include <array>
#include <chrono>
#include <cstddef>
#include <memory>

#include "common/expected.hpp"
#include "engine/parallel/communicator.hpp"

namespace troupe::engine::parallel {

// NCCL's ncclUniqueId as plain bytes: the group's leader makes one and hands the same bytes to
// every rank (over CAF), which is all the rendezvous NCCL needs.
using nccl_unique_id = std::array<std::byte, 128>;

// Makes a fresh id (ncclGetUniqueId). The process that calls it hosts NCCL's bootstrap root: it
// must stay alive until every rank has joined. Needs no device.
[[nodiscard]] expected<nccl_unique_id> make_nccl_unique_id();

struct nccl_options {
  int rank = 0;
  int size = 1;
  int device = 0;                // the CUDA device this rank drives
  cudaStream_t stream = nullptr; // where collectives are enqueued; 0 is the legacy default stream
  // Bounds joining (every rank must call make_nccl_communicator with the same id in this time),
  // each enqueue and each synchronize(). On expiry the communicator is aborted (ncclCommAbort).
  std::chrono::milliseconds timeout{30'000};
};

// Joins the group (ncclCommInitRankConfig, non-blocking, polled up to the timeout). The spans given
// to the collectives are device memory on `device`; the collectives return once enqueued on
// `stream`, and synchronize() waits for the stream and watches NCCL's asynchronous error state.
// barrier() is an all-reduce of one float followed by synchronize(). Errors name the NCCL or CUDA
// call and NCCL's last error message.
[[nodiscard]] expected<std::unique_ptr<communicator>> make_nccl_communicator(const nccl_options& options,
                                                                             const nccl_unique_id& id);

}  // namespace troupe::engine::parallel
