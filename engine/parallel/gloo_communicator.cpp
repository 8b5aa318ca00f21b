// gloo_communicator: Gloo's TCP transport and option-struct collectives (ring allreduce, broadcast,
// barrier); Gloo's exceptions become error values that break the communicator for good.
#include "engine/parallel/gloo_communicator.hpp"

#include <csignal>
#include <mutex>
#include <optional>

#include <gloo/allreduce.h>
#include <gloo/barrier.h>
#include <gloo/broadcast.h>
#include <gloo/math.h>
#include <gloo/rendezvous/context.h>
#include <gloo/transport/tcp/device.h>

#include "engine/parallel/gloo_store_adapter.hpp"

namespace troupe::engine::parallel {
namespace {

void ignore_sigpipe_once() {
  static std::once_flag once;
  std::call_once(once, [] {
    struct sigaction current {};
    if (sigaction(SIGPIPE, nullptr, &current) == 0 && current.sa_handler == SIG_DFL) std::signal(SIGPIPE, SIG_IGN);
  });
}

class gloo_communicator final : public communicator {
 public:
  gloo_communicator(std::shared_ptr<gloo::rendezvous::Context> context, std::chrono::milliseconds timeout)
      : context_(std::move(context)), timeout_(timeout) {}

  [[nodiscard]] int rank() const override { return context_->rank; }
  [[nodiscard]] int size() const override { return context_->size; }

  [[nodiscard]] expected<void> all_reduce_sum(std::span<float> data) override {
    if (data.empty() || size() == 1) return checked_noop();
    return run("all_reduce_sum", data.size() * sizeof(float), [this, data] {
      gloo::AllreduceOptions opts(context_);
      opts.setAlgorithm(gloo::AllreduceOptions::Algorithm::RING);
      opts.setOutput(data.data(), data.size());
      opts.setReduceFunction(
          static_cast<void (*)(void*, const void*, const void*, size_t)>(&gloo::sum<float>));
      opts.setTimeout(timeout_);
      gloo::allreduce(opts);
    });
  }

  [[nodiscard]] expected<void> broadcast(std::span<std::byte> data, int root) override {
    if (root < 0 || root >= size())
      return fail("gloo broadcast: root " + std::to_string(root) + " is not a rank of a group of " +
                  std::to_string(size()));
    if (data.empty() || size() == 1) return checked_noop();
    return run("broadcast", data.size(), [this, data, root] {
      gloo::BroadcastOptions opts(context_);
      opts.setOutput(reinterpret_cast<uint8_t*>(data.data()), data.size());
      opts.setRoot(root);
      opts.setTimeout(timeout_);
      gloo::broadcast(opts);
    });
  }

  [[nodiscard]] expected<void> barrier() override {
    if (size() == 1) return checked_noop();
    return run("barrier", 0, [this] {
      gloo::BarrierOptions opts(context_);
      opts.setTimeout(timeout_);
      gloo::barrier(opts);
    });
  }

  [[nodiscard]] expected<void> synchronize() override { return checked_noop(); }

 private:
  [[nodiscard]] expected<void> checked_noop() const {
    if (broken_) return *broken_;
    return {};
  }

  template <class F>
  [[nodiscard]] expected<void> run(const char* what, size_t bytes, F&& collective) {
    if (broken_) return *broken_;
    try {
      collective();
      return {};
    } catch (const std::exception& e) {
      broken_ = fail(std::string("gloo ") + what + " (rank " + std::to_string(rank()) + " of " +
                     std::to_string(size()) + ", " + std::to_string(bytes) + " bytes, timeout " +
                     std::to_string(timeout_.count()) + " ms) failed; the group is broken: " + e.what());
      return *broken_;
    }
  }

  std::shared_ptr<gloo::rendezvous::Context> context_;
  std::chrono::milliseconds timeout_;
  // Set by the first failure, after which Gloo's pairs are in an unknown state (Gloo's own docs:
  // recreate them); every later call returns it.
  std::optional<error> broken_;
};

}  // namespace

expected<std::unique_ptr<communicator>> make_gloo_communicator(const gloo_options& options, rendezvous_store& store) {
  const std::string who = "gloo rank " + std::to_string(options.rank) + " of " + std::to_string(options.size);
  if (options.size < 1) return fail("gloo: group size " + std::to_string(options.size) + " must be at least 1");
  if (options.rank < 0 || options.rank >= options.size) return fail(who + ": rank out of range");
  if (options.timeout.count() <= 0)
    return fail(who + ": timeout " + std::to_string(options.timeout.count()) + " ms must be positive");
  const auto connect_timeout = options.connect_timeout.count() > 0 ? options.connect_timeout : options.timeout;
  ignore_sigpipe_once();
  const std::string where =
      options.interface.empty() ? "address " + options.address : "interface " + options.interface;
  std::shared_ptr<gloo::transport::Device> device;
  try {
    gloo::transport::tcp::attr attr;
    if (!options.interface.empty())
      attr.iface = options.interface;
    else
      attr.hostname = options.address;
    device = gloo::transport::tcp::CreateDevice(attr);
  } catch (const std::exception& e) {
    return fail(who + ": cannot listen on " + where + ": " + e.what());
  }
  try {
    auto context = std::make_shared<gloo::rendezvous::Context>(options.rank, options.size);
    context->setTimeout(connect_timeout);
    gloo_store_adapter adapter(store, options.prefix, connect_timeout);
    context->connectFullMesh(adapter, device);
    context->setTimeout(options.timeout);
    return std::unique_ptr<communicator>(std::make_unique<gloo_communicator>(std::move(context), options.timeout));
  } catch (const std::exception& e) {
    return fail(who + " (" + where + "): could not connect the group within " +
                std::to_string(connect_timeout.count()) + " ms: " + e.what());
  }
}

}  // namespace troupe::engine::parallel
