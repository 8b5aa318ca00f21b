// The autoscaler role (see autoscaler_role.hpp).
#include "cli/autoscaler_role.hpp"

#include <spdlog/spdlog.h>

#include <caf/scoped_actor.hpp>

#include "autoscaler/autoscaler_actor.hpp"
#include "common/cluster_config.hpp"

namespace troupe::cli {

expected<std::unique_ptr<autoscaler_role>> autoscaler_role::start(node_env& env, const cluster::router_actor& router,
                                                                   std::shared_ptr<router::cluster_view> view) {
  const node_options& o = env.options;
  if (!o.launcher) return std::unique_ptr<autoscaler_role>{};
  if (!router) return fail("the autoscaler role runs beside the router role (--roles router,autoscaler)");
  auto policy = autoscaler::make_scaling_policy(o.scale_policy, o.scaling);
  if (!policy) return policy.err();
  auto at = cluster::parse_host_port(o.listen, "--listen");
  if (!at) return at.err();
  std::string host = at->host;
  if (host.empty() || host == "0.0.0.0" || host == "::") host = "127.0.0.1";
  o.launcher->set_router(host + ":" + std::to_string(env.ports.cluster));
  autoscaler::autoscaler_options a = o.autoscale;
  a.min_replicas = o.scaling.min_replicas;
  a.max_replicas = o.scaling.max_replicas;
  a.drain_timeout_s = o.drain_timeout_s;
  autoscaler::autoscaler_parts parts;
  parts.workers = o.launcher;
  parts.policy = std::move(*policy);
  parts.registry = caf::actor_cast<cluster::registry_actor>(router);
  parts.metrics = &env.metrics;
  parts.give_up = [](int code, const std::string& why) {
    std::fprintf(stderr, "error: %s\n", why.c_str());
    request_node_stop(code);
  };
  if (view) {
    parts.on_failed = [view](const std::string& why) { view->set_model_failed(why); };
    parts.held = [view]() { return view->held(); };
    parts.on_cold_start = [view](double s) { view->set_cold_start(s); };
  }
  spdlog::info("autoscaler: '{}' with {} to {} workers ({} policy{}), started as {}", a.model, a.min_replicas,
               a.max_replicas, o.scale_policy, a.dry_run ? ", dry run" : "", o.launcher->describe());
  std::unique_ptr<autoscaler_role> role(new autoscaler_role(env.system, o.launcher));
  role->actor_ = autoscaler::spawn_autoscaler(env.system, std::move(a), std::move(parts));
  return role;
}

autoscaler_role::~autoscaler_role() {
  if (actor_) {
    caf::scoped_actor self{system_};
    self->send_exit(actor_, caf::exit_reason::user_shutdown);
    self->wait_for(actor_);
  }
  launcher_->stop_all(std::chrono::seconds(5));
}

}  // namespace troupe::cli
