// Loading a shard group (see worker.hpp).
#include "gpu_actor/worker.hpp"

#include <spdlog/spdlog.h>
#include <cstdio>
#include <thread>

#include "engine/make_backend.hpp"
#include "engine/model_tokenizer.hpp"
#include "engine/executor/rank.hpp"

namespace troupe::gpu_actor {

expected<std::shared_ptr<leader_resources>> load_worker(const worker_options& o, cluster::group_info& info) {
  if (o.tp < 1 || o.tp > 64) return fail("--tp " + std::to_string(o.tp) + ": give 1 to 64 ranks");
  auto res = std::make_shared<leader_resources>();
  auto m = engine::load_model(o.model_path);
  if (!m) return m.err();
  res->model = *m;
  // The engine stops on the tokenizer's eos ids as well as the config's.
  auto tok = engine::load_tokenizer_for(*res->model);
  if (!tok) return tok.err();
  std::vector<int32_t> eos = res->model->config.eos_token_ids;
  for (int32_t id : (*tok)->specials().eos_ids) eos.push_back(id);
  if (o.tp == 1) {
    auto be = engine::make_backend(o.device, o.threads);
    if (!be) return be.err();
    res->backend = std::move(*be);
    auto fwd = engine::llama_forward::create(res->model, *res->backend, o.engine.max_batched_tokens);
    if (!fwd) return fwd.err();
    res->forward = std::move(*fwd);
    if (o.engine.enforce_eager) res->forward->set_graph_max_batch(0);
  } else {
    engine::rank_options ro;
    ro.model = res->model;
    ro.tp = o.tp;
    ro.group = o.group_name;
    ro.address = o.rank_address;
    ro.timeout = o.rank_timeout;
    ro.connect_timeout = o.join_timeout;
    ro.max_tokens = o.engine.max_batched_tokens;
    ro.device = o.device;
    ro.enforce_eager = o.engine.enforce_eager;
    // Thread ranks split the cores; a process rank 0 has its node's cores to itself.
    const int cores = o.threads > 0 ? o.threads : int(std::max(1U, std::thread::hardware_concurrency()));
    ro.threads = o.rank_store ? cores : std::max(1, cores / o.tp);
    auto store = o.rank_store ? o.rank_store : engine::parallel::make_memory_store();
    if (!o.rank_store) {
      for (int r = 1; r < o.tp; ++r) {
        engine::rank_options mine = ro;
        mine.rank = r;
        res->ranks.emplace_back([mine, store]() {
          if (auto done = engine::run_follower_rank(*store, mine); !done)
            spdlog::error("{}", done.message());
        });
      }
    }
    auto rank0 = engine::make_rank(*store, ro);  // joins when every rank has
    if (!rank0) return rank0.err();      // res's destructor joins the thread ranks (they fail within the timeout)
    res->control = std::move(rank0->control);
    res->backend = std::move(rank0->backend);
    res->comm = std::move(rank0->comm);
    res->forward = std::move(rank0->forward);
  }
  engine::engine_config cfg = o.engine;
  cfg.model_revision = o.revision;
  std::unique_ptr<engine::step_executor> executor;  // none: this process's forward pass alone
  if (res->control) {
    auto group = engine::make_group_executor(*res->forward, *res->control);
    if (!group) return group.err();
    executor = std::move(*group);
  }
  auto eng = engine::llm_engine::create(*res->forward, cfg, std::move(eos), std::move(executor));
  if (!eng) return eng.err();
  res->engine = std::move(*eng);
  const auto stats = res->engine->stats();
  info.name = o.group_name;
  info.model = o.model_name;
  info.revision = o.revision;
  info.max_context = res->model->config.max_position;
  info.block_size = cfg.block_size;
  info.kv_capacity_tokens = stats.kv_capacity_tokens;
  info.max_running = cfg.max_running;
  info.tp = o.tp;
  return res;
}

}  // namespace troupe::gpu_actor
