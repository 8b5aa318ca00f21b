// Loading a shard group (see worker.hpp).
#include "gpu_actor/worker.hpp"

#include "engine/cpu_backend.hpp"
#include "engine/model_tokenizer.hpp"

namespace troupe::gpu_actor {

expected<std::shared_ptr<leader_resources>> load_worker(const worker_options& o, cluster::group_info& info) {
  if (o.tp != 1)
    return fail("--tp " + std::to_string(o.tp) +
                ": tensor parallelism is not built yet; a shard group runs one rank (--tp 1)");
  auto res = std::make_shared<leader_resources>();
  auto m = engine::load_model(o.model_path);
  if (!m) return m.err();
  res->model = *m;
  // The engine stops on the tokenizer's eos ids as well as the config's.
  auto tok = engine::load_tokenizer_for(*res->model);
  if (!tok) return tok.err();
  std::vector<int32_t> eos = res->model->config.eos_token_ids;
  for (int32_t id : (*tok)->specials().eos_ids) eos.push_back(id);
  res->backend = engine::make_cpu_backend(o.threads);
  auto fwd = engine::llama_forward::create(res->model, *res->backend, o.engine.max_batched_tokens);
  if (!fwd) return fwd.err();
  res->forward = std::move(*fwd);
  engine::engine_config cfg = o.engine;
  cfg.model_revision = o.revision;
  auto eng = engine::llm_engine::create(*res->forward, cfg, std::move(eos));
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
