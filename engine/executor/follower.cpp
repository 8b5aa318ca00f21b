// run_follower: setup, then steps until stop (see follower.hpp).
#include "engine/executor/follower.hpp"

#include <string>

#include "engine/executor/step_broadcast.hpp"

namespace troupe::engine {

expected<void> run_follower(llama_forward& fwd, parallel::communicator& comm) {
  const std::string who = "rank " + std::to_string(comm.rank()) + " of " + std::to_string(comm.size());
  auto first = receive_group_message(comm);
  if (!first) return fail(who + ": " + first.message());
  if (first->kind == group_message_kind::stop) return {};
  if (first->kind != group_message_kind::setup) return fail(who + ": the leader's first message is not its setup");
  auto kv = fwd.new_paged_kv(first->num_blocks, first->block_size);
  if (!kv) return fail(who + ": " + kv.message());
  fwd.set_graph_max_batch(first->graph_max_batch);
  while (true) {
    auto m = receive_group_message(comm);
    if (!m) return fail(who + ": " + m.message());
    switch (m->kind) {
      case group_message_kind::stop: return {};
      case group_message_kind::keepalive: break;
      case group_message_kind::setup: return fail(who + ": a second setup from the leader");
      case group_message_kind::step:
        if (auto ran = run_step_batch(fwd, **kv, m->batch, {}, {}); !ran) return fail(who + ": step: " + ran.message());
        break;
    }
  }
}

}  // namespace troupe::engine
