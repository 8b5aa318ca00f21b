// The collectives a tensor-parallel rank needs (all-reduce, broadcast, barrier), behind one
// interface with a single (tp = 1), a Gloo (CPU, TCP) and an NCCL (GPU) implementation.
#pragma once

#include <cstddef>
#include <memory>
#include <span>

#include "common/expected.hpp"

namespace troupe::engine::parallel {

// One rank's view of its shard group. Every rank of the group calls the same collectives in the
// same order with the same sizes (and, for broadcast, the same root); anything else is a bug that
// shows up as a timeout.
//
// Failure contract: a peer that died, hung or never joined makes every waiting rank return an
// error within the timeout its communicator was made with; no call blocks forever. After the first
// error a communicator is broken: every later call returns that error again. The group is then
// torn down and a new one made (a new rendezvous), never repaired in place.
//
// Completion: the CPU communicators (single, Gloo) finish each collective before returning. A
// device communicator (NCCL) only enqueues it on its stream and returns; synchronize() waits for
// everything enqueued, bounded by the timeout. Calling synchronize() before reading results on the
// host is therefore always correct.
//
// Memory: the spans are host memory for the CPU communicators and device memory for NCCL (never
// dereferenced on the host there).
//
// Threading contract: one communicator per rank, used by one thread at a time.
class communicator {
 public:
  virtual ~communicator() = default;

  [[nodiscard]] virtual int rank() const = 0;
  [[nodiscard]] virtual int size() const = 0;

  // data[i] = the sum over ranks of data[i], in place. Every rank ends with bit-identical values
  // (ranks must stay in lockstep: each one samples from, or continues with, the same numbers).
  [[nodiscard]] virtual expected<void> all_reduce_sum(std::span<float> data) = 0;

  // Every rank's `data` becomes root's. Sizes must match across ranks.
  [[nodiscard]] virtual expected<void> broadcast(std::span<std::byte> data, int root) = 0;

  // Returns once every rank has entered it.
  [[nodiscard]] virtual expected<void> barrier() = 0;

  // Waits for every collective this rank has issued; a no-op for the CPU communicators.
  [[nodiscard]] virtual expected<void> synchronize() = 0;

  // True when the collectives are enqueued on `stream` (a device stream, as the backend's
  // native_stream() gives it): the device then orders them with that stream's other work, and a
  // caller whose next reader is on the same stream need not synchronize() in between. The CPU
  // communicators finish each collective before returning and answer false.
  [[nodiscard]] virtual bool enqueues_on(const void* stream) const {
    (void)stream;
    return false;
  }
};

// tp = 1: rank 0 of 1; the collectives are no-ops (broadcast checks root == 0).
[[nodiscard]] std::unique_ptr<communicator> make_single_communicator();

}  // namespace troupe::engine::parallel
