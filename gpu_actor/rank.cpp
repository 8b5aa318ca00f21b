// A rank's parts (see rank.hpp).
#include "gpu_actor/rank.hpp"

#include "engine/cpu_backend.hpp"
#include "engine/parallel/gloo_communicator.hpp"
#include "engine/tp_follower.hpp"
#include "engine/tp_forward.hpp"

namespace troupe::gpu_actor {

expected<rank_resources> make_rank(engine::parallel::rendezvous_store& store, const rank_options& o) {
  const std::string who = "rank " + std::to_string(o.rank) + " of group " + o.group;
  rank_resources r;
  engine::parallel::gloo_options go;
  go.rank = o.rank;
  go.size = o.tp;
  go.address = o.address;
  go.timeout = o.timeout;
  go.connect_timeout = o.connect_timeout;
  go.prefix = "group/" + o.group;
  auto comm = engine::parallel::make_gloo_communicator(go, store);
  if (!comm) return fail(who + ": " + comm.message());
  r.comm = std::move(*comm);
  r.backend = engine::make_cpu_backend(o.threads);
  auto fwd = engine::create_tp_forward(o.model, *r.backend, o.max_tokens, *r.comm);
  if (!fwd) return fail(who + ": " + fwd.message());
  r.forward = std::move(*fwd);
  // Every rank has its shard before the leader's first message: a rank that failed to build one
  // fails the others here, at start, instead of at their first step.
  if (auto ready = r.comm->barrier(); !ready) return fail(who + ": waiting for the other ranks: " + ready.message());
  return r;
}

expected<void> run_follower_rank(engine::parallel::rendezvous_store& store, const rank_options& o) {
  auto r = make_rank(store, o);
  if (!r) return r.err();
  return engine::run_follower(*r->forward, *r->comm);
}

}  // namespace troupe::gpu_actor
