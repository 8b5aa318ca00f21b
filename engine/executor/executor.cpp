// The local and the shard group executors (see executor.hpp).
#include "engine/executor/executor.hpp"

#include "engine/executor/step_broadcast.hpp"

namespace troupe::engine {
namespace {

class local_executor final : public step_executor {
 public:
  explicit local_executor(llama_forward& fwd) : fwd_(fwd) {}

  expected<std::unique_ptr<paged_kv>> setup(int64_t num_blocks, int32_t block_size) override {
    return fwd_.new_paged_kv(num_blocks, block_size);
  }
  expected<void> run(paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                     std::span<float> logits) override {
    return run_step_batch(fwd_, kv, b, logit_rows, logits);
  }
  expected<void> run_sampled(paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                             std::span<const device_sampling> rows, std::span<const penalty_entry> penalties,
                             std::span<int32_t> ids) override {
    return run_step_batch_sampled(fwd_, kv, b, logit_rows, rows, penalties, ids);
  }
  expected<void> keep_alive() override { return {}; }
  const std::optional<std::string>& failure() const override { return none_; }

 private:
  llama_forward& fwd_;
  const std::optional<std::string> none_;
};

// Every message to the ranks goes first; a failure to send, or a step that fails here after the
// ranks may have run it, leaves the ranks out of step: the group is done from then on.
class group_executor final : public step_executor {
 public:
  group_executor(llama_forward& fwd, parallel::communicator& group) : local_(fwd), fwd_(fwd), group_(group) {}
  ~group_executor() override {
    if (failure_) return;
    group_message stop;
    stop.kind = group_message_kind::stop;
    (void)send_group_message(group_, stop);  // a rank already gone has nothing left to stop
  }

  expected<std::unique_ptr<paged_kv>> setup(int64_t num_blocks, int32_t block_size) override {
    group_message m;
    m.kind = group_message_kind::setup;
    m.num_blocks = int32_t(num_blocks);
    m.block_size = block_size;
    m.graph_max_batch = int32_t(fwd_.graph_max_batch());
    if (auto sent = send(m); !sent) return fail("engine: shard group setup: " + sent.message());
    return local_.setup(num_blocks, block_size);
  }
  expected<void> run(paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                     std::span<float> logits) override {
    if (auto sent = send_step(b); !sent) return sent;
    return failed_if(local_.run(kv, b, logit_rows, logits));
  }
  expected<void> run_sampled(paged_kv& kv, const step_batch& b, std::span<const int32_t> logit_rows,
                             std::span<const device_sampling> rows, std::span<const penalty_entry> penalties,
                             std::span<int32_t> ids) override {
    if (auto sent = send_step(b); !sent) return sent;
    return failed_if(local_.run_sampled(kv, b, logit_rows, rows, penalties, ids));
  }
  expected<void> keep_alive() override {
    group_message m;
    m.kind = group_message_kind::keepalive;
    return send(m);
  }
  const std::optional<std::string>& failure() const override { return failure_; }

 private:
  expected<void> send(const group_message& m) {
    if (failure_) return fail(*failure_);
    return failed_if(send_group_message(group_, m));
  }
  expected<void> send_step(const step_batch& b) {
    if (failure_) return fail(*failure_);
    return failed_if(send_group_step(group_, b));
  }
  expected<void> failed_if(expected<void> r) {
    if (r) return r;
    failure_ = "shard group failed: " + r.message();
    return fail(*failure_);
  }

  local_executor local_;
  llama_forward& fwd_;
  parallel::communicator& group_;
  std::optional<std::string> failure_;
};

}  // namespace

std::unique_ptr<step_executor> make_local_executor(llama_forward& fwd) {
  return std::make_unique<local_executor>(fwd);
}

expected<std::unique_ptr<step_executor>> make_group_executor(llama_forward& fwd, parallel::communicator& group) {
  if (group.size() == 1) return make_local_executor(fwd);
  if (group.rank() != 0)
    return fail("engine: a shard group's engine runs on rank 0, not rank " + std::to_string(group.rank()));
  return std::unique_ptr<step_executor>(std::make_unique<group_executor>(fwd, group));
}

}  // namespace troupe::engine
