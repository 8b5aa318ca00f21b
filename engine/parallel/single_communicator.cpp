// The communicator of a group of one (tp = 1): every collective is the identity, so the sharded
// forward pass runs unchanged without a second code path.
#include <string>

#include "engine/parallel/communicator.hpp"

namespace troupe::engine::parallel {
namespace {

class single_communicator final : public communicator {
 public:
  [[nodiscard]] int rank() const override { return 0; }
  [[nodiscard]] int size() const override { return 1; }
  [[nodiscard]] expected<void> all_reduce_sum(std::span<float>) override { return {}; }
  [[nodiscard]] expected<void> broadcast(std::span<std::byte>, int root) override {
    if (root != 0) return fail("broadcast: root " + std::to_string(root) + " is not a rank of a group of 1");
    return {};
  }
  [[nodiscard]] expected<void> barrier() override { return {}; }
  [[nodiscard]] expected<void> synchronize() override { return {}; }
};

}  // namespace

std::unique_ptr<communicator> make_single_communicator() { return std::make_unique<single_communicator>(); }

}  // namespace troupe::engine::parallel
