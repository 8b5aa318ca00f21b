// A rank's parts (see rank.hpp).
#include "engine/executor/rank.hpp"

#include <cstring>

#include "engine/make_backend.hpp"
#include "engine/parallel/gloo_communicator.hpp"
#include "engine/executor/follower.hpp"
#include "engine/executor/tp_forward.hpp"
#if TROUPE_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "engine/kernels/cuda/cuda_check.hpp"
#include "engine/parallel/nccl_communicator.hpp"
#endif

namespace troupe::engine {

namespace {

// The NCCL communicator of a GPU rank: rank 0 makes the unique id and publishes it in the store,
// the others wait for it; every rank then joins on its backend's stream.
expected<std::unique_ptr<parallel::communicator>> make_nccl(parallel::rendezvous_store& store,
                                                                    const rank_options& o, backend& be) {
#if TROUPE_HAVE_CUDA
  namespace par = parallel;
  const std::string key = "group/" + o.group + "/nccl_id";
  par::nccl_unique_id id{};
  if (o.rank == 0) {
    auto made = par::make_nccl_unique_id();
    if (!made) return made.err();
    id = *made;
    if (auto ok = store.set(key, id); !ok) return ok.err();
  } else {
    if (auto ok = store.wait({key}, o.connect_timeout); !ok) return ok.err();
    auto got = store.get(key);
    if (!got) return got.err();
    if (got->size() != id.size()) return fail("the NCCL unique id in the rendezvous has the wrong size");
    std::memcpy(id.data(), got->data(), id.size());
  }
  par::nccl_options no;
  no.rank = o.rank;
  no.size = o.tp;
  if (auto r = cuda::check(cudaGetDevice(&no.device), "cudaGetDevice"); !r) return r.err();
  // (make_backend made the rank's device current on this thread.)
  no.stream = static_cast<cudaStream_t>(be.native_stream());
  no.timeout = o.timeout;
  return par::make_nccl_communicator(no, id);
#else
  (void)store;
  (void)be;
  return fail("--device " + o.device + ": built without CUDA");
#endif
}

}  // namespace

expected<rank_resources> make_rank(parallel::rendezvous_store& store, const rank_options& o) {
  const std::string who = "rank " + std::to_string(o.rank) + " of group " + o.group;
  rank_resources r;
  parallel::gloo_options go;
  go.rank = o.rank;
  go.size = o.tp;
  go.address = o.address;
  go.timeout = o.timeout;
  go.connect_timeout = o.connect_timeout;
  go.prefix = "group/" + o.group;
  auto control = parallel::make_gloo_communicator(go, store);
  if (!control) return fail(who + ": " + control.message());
  r.control = std::move(*control);
  auto be = make_backend(o.device, o.threads, o.rank);
  if (!be) return fail(who + ": " + be.message());
  r.backend = std::move(*be);
  if (is_cuda_device(o.device)) {
    auto nccl = make_nccl(store, o, *r.backend);
    if (!nccl) return fail(who + ": " + nccl.message());
    r.comm = std::move(*nccl);
  }
  auto fwd = create_tp_forward(o.model, *r.backend, o.max_tokens, r.data());
  if (!fwd) return fail(who + ": " + fwd.message());
  r.forward = std::move(*fwd);
  if (o.enforce_eager) r.forward->set_graph_max_batch(0);
  // Every rank has its shard before the leader's first message: a rank that failed to build one
  // fails the others here, at start, instead of at their first step.
  if (auto ready = r.control->barrier(); !ready) return fail(who + ": waiting for the other ranks: " + ready.message());
  return r;
}

expected<void> run_follower_rank(parallel::rendezvous_store& store, const rank_options& o) {
  auto r = make_rank(store, o);
  if (!r) return r.err();
  return run_follower(*r->forward, *r->control);
}

}  // namespace troupe::engine
