// The worker role (see worker_role.hpp).
#include "cli/worker_role.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "cli/cluster_join.hpp"
#include "frontend/core/model_frontend.hpp"
#include "gpu_actor/rendezvous.hpp"
#include "gpu_actor/worker.hpp"

namespace troupe::cli {

using namespace troupe::cluster;

namespace {

std::string default_group_name() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid()) + "/0";
}

expected<void> register_group(caf::actor_system& system, const router_actor& router, const group_info& info,
                              const gpu_leader_actor& leader) {
  caf::scoped_actor self{system};
  expected<void> out;
  self->request(router, std::chrono::seconds(10), register_atom::value, info, leader)
      .receive([](bool) {},
               [&out, &system](caf::error& e) { out = fail("the router refused the shard group: " + system.render(e)); });
  return out;
}

}  // namespace

expected<std::unique_ptr<worker_role>> worker_role::start(node_env& env, router_actor local_router) {
  const node_options& o = env.options;
  auto role = std::unique_ptr<worker_role>(new worker_role());
  // The router first: a group whose ranks are processes publishes its rendezvous there.
  router_actor target = local_router;
  if (!target) {
    auto at = parse_host_port(o.join, "--join");
    if (!at) return at.err();
    auto r = join_router(env.system, *at, o.join_timeout_s);
    if (!r) return r.err();
    target = *r;
    role->router_lost_ = when_down(env.system, caf::actor_cast<caf::actor>(target), role->router_watcher_);
  }
  gpu_actor::worker_options wo;
  wo.model_path = o.model;
  wo.model_name = frontend::model_name_for(o.model);
  wo.revision = frontend::model_revision_for(o.model);
  wo.group_name = o.name.empty() ? default_group_name() : o.name;
  wo.threads = o.threads;
  wo.tp = o.tp;
  wo.device = o.device;
  wo.rank_address = o.rank_address;
  wo.rank_timeout = std::chrono::milliseconds(int64_t(o.rank_timeout_s * 1000));
  wo.join_timeout = std::chrono::milliseconds(int64_t(o.join_timeout_s * 1000));
  wo.engine = o.engine;
  if (o.rank == 0) {
    role->rendezvous_ = gpu_actor::spawn_rendezvous(env.system);
    caf::anon_send(target, rendezvous_atom::value, wo.group_name, role->rendezvous_);
    wo.rank_store = gpu_actor::make_caf_store(env.system, role->rendezvous_);
    // The ranks may start before or after this node: they wait for the rendezvous, and this node
    // waits for them as long as they keep trying to join (--join-timeout).
    spdlog::info("shard group {} waiting for ranks 1..{}", wo.group_name, o.tp - 1);
  }
  group_info info;
  auto res = gpu_actor::load_worker(wo, info);
  if (!res) return res.err();
  role->leader_ = gpu_actor::spawn_leader(env.system, std::move(*res), info, caf::actor_cast<load_sink_actor>(target));
  role->group_lost_ = when_down(env.system, caf::actor_cast<caf::actor>(role->leader_), role->group_watcher_);
  if (auto ok = register_group(env.system, target, info, role->leader_); !ok) return ok.err();
  spdlog::info("shard group {} serving '{}': KV cache of {} tokens ({}-token blocks), {} threads, tp {}", info.name,
               info.model, info.kv_capacity_tokens, info.block_size, o.threads, o.tp);
  return role;
}

void worker_role::leave(caf::actor_system& system) {
  // Sent as an actor of this node: the leader takes leave from its own node only.
  caf::scoped_actor self{system};
  self->send(leader_, leave_atom::value);
}

worker_role::~worker_role() {
  for (const caf::actor& w : {router_watcher_, group_watcher_})
    if (w) caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
  if (rendezvous_) caf::anon_send_exit(rendezvous_, caf::exit_reason::user_shutdown);
  if (leader_) caf::anon_send_exit(leader_, caf::exit_reason::user_shutdown);
}

}  // namespace troupe::cli
