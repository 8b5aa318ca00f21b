// nccl_communicator: a non-blocking NCCL communicator (blocking = 0) whose every wait polls with a
// deadline and aborts on a peer's failure or expiry; NCCL's default would block forever on a dead peer.
#include "engine/parallel/nccl_communicator.hpp"

#include "engine/kernels/cuda/cuda_check.hpp"

#include <nccl.h>

#include <cstring>
#include <optional>
#include <string>
#include <thread>

namespace troupe::engine::parallel {
namespace {

static_assert(sizeof(ncclUniqueId) == std::tuple_size_v<nccl_unique_id>, "ncclUniqueId is 128 bytes");

using steady = std::chrono::steady_clock;

[[nodiscard]] std::string describe(ncclResult_t r, ncclComm_t comm) {
  std::string s = ncclGetErrorString(r);
  const char* last = ncclGetLastError(comm);
  if (last && *last) s += std::string(" (") + last + ")";
  return s;
}

// Polling interval: short next to a decode step's collectives (tens of microseconds each), yet
// leaves the core to others while a long prefill runs.
constexpr auto poll_interval = std::chrono::microseconds(20);

class nccl_communicator final : public communicator {
 public:
  nccl_communicator(ncclComm_t comm, const nccl_options& options, float* scratch)
      : comm_(comm), options_(options), scratch_(scratch) {}

  ~nccl_communicator() override {
    (void)cudaSetDevice(options_.device);
    if (comm_) {
      // Finalize flushes outstanding work; a peer that is gone makes it time out, then we abort.
      ncclResult_t r = ncclCommFinalize(comm_);
      if ((r == ncclSuccess || r == ncclInProgress) && wait_ready("ncclCommFinalize", deadline()))
        (void)ncclCommDestroy(comm_);
      else if (comm_)
        (void)ncclCommAbort(comm_);
    }
    if (scratch_) (void)cudaFree(scratch_);
  }

  [[nodiscard]] int rank() const override { return options_.rank; }
  [[nodiscard]] int size() const override { return options_.size; }

  [[nodiscard]] expected<void> all_reduce_sum(std::span<float> data) override {
    if (broken_) return *broken_;
    if (data.empty()) return {};
    return issue("ncclAllReduce", [this, data] {
      return ncclAllReduce(data.data(), data.data(), data.size(), ncclFloat32, ncclSum, comm_, options_.stream);
    });
  }

  [[nodiscard]] expected<void> broadcast(std::span<std::byte> data, int root) override {
    if (broken_) return *broken_;
    if (root < 0 || root >= size())
      return fail("nccl broadcast: root " + std::to_string(root) + " is not a rank of a group of " +
                  std::to_string(size()));
    if (data.empty()) return {};
    return issue("ncclBroadcast", [this, data, root] {
      return ncclBroadcast(data.data(), data.data(), data.size(), ncclUint8, root, comm_, options_.stream);
    });
  }

  [[nodiscard]] expected<void> barrier() override {
    if (auto r = all_reduce_sum(std::span<float>(scratch_, 1)); !r) return r;
    return synchronize();
  }

  [[nodiscard]] bool enqueues_on(const void* stream) const override {
    return stream != nullptr && stream == static_cast<const void*>(options_.stream);
  }

  // Waits for the stream, watching NCCL's error state, until the deadline.
  [[nodiscard]] expected<void> synchronize() override {
    if (broken_) return *broken_;
    if (auto r = cuda::check(cudaSetDevice(options_.device), "cudaSetDevice"); !r) return break_with(r.message());
    const auto end = deadline();
    for (;;) {
      const cudaError_t q = cudaStreamQuery(options_.stream);
      if (q == cudaSuccess) return {};
      if (q != cudaErrorNotReady) return break_with(cuda::cuda_error("cudaStreamQuery", q));
      ncclResult_t state = ncclSuccess;
      if (ncclResult_t r = ncclCommGetAsyncError(comm_, &state); r != ncclSuccess)
        return break_with("ncclCommGetAsyncError: " + describe(r, comm_));
      if (state != ncclSuccess && state != ncclInProgress)
        return break_with("a collective failed: " + describe(state, comm_));
      if (steady::now() >= end)
        return break_with("synchronize timed out after " + std::to_string(options_.timeout.count()) +
                          " ms (a peer is dead or hung)");
      std::this_thread::sleep_for(poll_interval);
    }
  }

 private:
  [[nodiscard]] steady::time_point deadline() const { return steady::now() + options_.timeout; }

  // Enqueues one collective; in non-blocking mode the call may return ncclInProgress while NCCL
  // finishes enqueuing, which we wait out (bounded) before returning.
  template <class F>
  [[nodiscard]] expected<void> issue(const char* call, F&& enqueue) {
    if (auto r = cuda::check(cudaSetDevice(options_.device), "cudaSetDevice"); !r) return break_with(r.message());
    const ncclResult_t r = enqueue();
    if (r != ncclSuccess && r != ncclInProgress) return break_with(std::string(call) + ": " + describe(r, comm_));
    if (r == ncclInProgress && !wait_ready(call, deadline())) return *broken_;
    return {};
  }

  // Polls the communicator out of ncclInProgress; false (and broken, aborted) on error or timeout.
  [[nodiscard]] bool wait_ready(const char* call, steady::time_point end) {
    for (;;) {
      ncclResult_t state = ncclSuccess;
      ncclResult_t r = ncclCommGetAsyncError(comm_, &state);
      if (r != ncclSuccess) state = r;
      if (state == ncclSuccess) return true;
      if (state != ncclInProgress) {
        (void)break_with(std::string(call) + ": " + describe(state, comm_));
        return false;
      }
      if (steady::now() >= end) {
        (void)break_with(std::string(call) + " timed out after " + std::to_string(options_.timeout.count()) +
                         " ms (a peer is dead or hung)");
        return false;
      }
      std::this_thread::sleep_for(poll_interval);
    }
  }

  // Records the first error, aborts the communicator (which unblocks its kernels), returns it.
  [[nodiscard]] expected<void> break_with(const std::string& what) {
    if (!broken_)
      broken_ = fail("nccl rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ": " + what +
                     "; the group is broken");
    if (comm_) {
      (void)ncclCommAbort(comm_);
      comm_ = nullptr;
    }
    return *broken_;
  }

  ncclComm_t comm_;
  nccl_options options_;
  float* scratch_;  // one device float for barrier()
  std::optional<error> broken_;
};

}  // namespace

expected<nccl_unique_id> make_nccl_unique_id() {
  ncclUniqueId id;
  if (ncclResult_t r = ncclGetUniqueId(&id); r != ncclSuccess)
    return fail(std::string("ncclGetUniqueId: ") + ncclGetErrorString(r));
  nccl_unique_id out;
  std::memcpy(out.data(), &id, sizeof id);
  return out;
}

expected<std::unique_ptr<communicator>> make_nccl_communicator(const nccl_options& options,
                                                               const nccl_unique_id& id) {
  const std::string who = "nccl rank " + std::to_string(options.rank) + " of " + std::to_string(options.size);
  if (options.size < 1) return fail("nccl: group size " + std::to_string(options.size) + " must be at least 1");
  if (options.rank < 0 || options.rank >= options.size) return fail(who + ": rank out of range");
  if (options.timeout.count() <= 0)
    return fail(who + ": timeout " + std::to_string(options.timeout.count()) + " ms must be positive");
  int devices = 0;
  if (cudaError_t e = cudaGetDeviceCount(&devices); e != cudaSuccess) {
    (void)cudaGetLastError();
    return fail(who + ": no CUDA device (" + cuda::cuda_error("cudaGetDeviceCount", e) + ")");
  }
  if (options.device < 0 || options.device >= devices)
    return fail(who + ": device " + std::to_string(options.device) + " out of range (" + std::to_string(devices) +
                " visible)");
  if (auto r = cuda::check(cudaSetDevice(options.device), "cudaSetDevice"); !r) return fail(who + ": " + r.message());
  float* scratch = nullptr;
  if (auto r = cuda::check(cudaMalloc(reinterpret_cast<void**>(&scratch), sizeof(float)), "cudaMalloc"); !r)
    return fail(who + ": " + r.message());
  if (auto r = cuda::check(cudaMemset(scratch, 0, sizeof(float)), "cudaMemset"); !r) {
    (void)cudaFree(scratch);
    return fail(who + ": " + r.message());
  }

  ncclUniqueId nid;
  std::memcpy(&nid, id.data(), sizeof nid);
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;  // every call returns at once; we poll with a deadline
  ncclComm_t comm = nullptr;
  ncclResult_t r = ncclCommInitRankConfig(&comm, options.size, nid, options.rank, &config);
  const auto end = steady::now() + options.timeout;
  while (r == ncclInProgress) {
    if (steady::now() >= end) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ncclResult_t state = ncclInProgress;
    if (ncclResult_t q = ncclCommGetAsyncError(comm, &state); q != ncclSuccess) state = q;
    r = state;
  }
  if (r != ncclSuccess) {
    std::string why = r == ncclInProgress ? "not every rank joined within " + std::to_string(options.timeout.count()) +
                                                " ms"
                                          : "ncclCommInitRankConfig: " + describe(r, comm);
    if (comm) (void)ncclCommAbort(comm);
    (void)cudaFree(scratch);
    return fail(who + ": " + why);
  }
  return std::unique_ptr<communicator>(std::make_unique<nccl_communicator>(comm, options, scratch));
}

}  // namespace troupe::engine::parallel
