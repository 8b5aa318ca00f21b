// create_tp_forward: shard plan -> shard model -> llama_forward with the rank's communicator.
#include "engine/executor/tp_forward.hpp"

#include "engine/parallel/shard_model.hpp"
#include "engine/parallel/shard_plan.hpp"

namespace troupe::engine {

expected<std::unique_ptr<llama_forward>> create_tp_forward(std::shared_ptr<const model> full, backend& be,
                                                           int64_t max_tokens, parallel::communicator& comm) {
  auto plan = parallel::make_shard_plan(full->config, comm.rank(), comm.size());
  if (!plan) return plan.err();
  auto shard = parallel::shard_model(std::move(full), *plan);
  if (!shard) return shard.err();
  return llama_forward::create(std::move(*shard), be, max_tokens, &comm);
}

}  // namespace troupe::engine
