// Cross-thread chunk channels (see stream_channel.hpp).
#include "frontend/core/stream_channel.hpp"

namespace troupe::frontend {

void stream_channel::push(cluster::token_chunk chunk) {
  std::lock_guard lock(mutex_);
  queue_.push_back(std::move(chunk));
  // Fulfilling under the lock: ready() cannot replace the fulfiller meanwhile. A cross-thread
  // fulfiller may be fulfilled from any thread, even after its promise was dropped.
  if (waiter_ && waiter_->isWaiting()) waiter_->fulfill();
}

kj::Promise<void> stream_channel::ready() {
  std::lock_guard lock(mutex_);
  if (!queue_.empty()) return kj::READY_NOW;
  auto pair = kj::newPromiseAndCrossThreadFulfiller<void>();
  waiter_ = kj::mv(pair.fulfiller);  // the previous one (settled or dropped) goes on this thread
  return kj::mv(pair.promise);
}

std::vector<cluster::token_chunk> stream_channel::drain() {
  std::lock_guard lock(mutex_);
  return std::exchange(queue_, {});
}

std::shared_ptr<stream_channel> stream_registry::open(int64_t id) {
  auto channel = std::make_shared<stream_channel>();
  std::lock_guard lock(mutex_);
  channels_[id] = channel;
  return channel;
}

void stream_registry::close(int64_t id) {
  std::shared_ptr<stream_channel> dropped;  // destroyed outside the lock
  std::lock_guard lock(mutex_);
  auto it = channels_.find(id);
  if (it == channels_.end()) return;
  dropped = std::move(it->second);
  channels_.erase(it);
}

bool stream_registry::deliver(cluster::token_chunk chunk) {
  std::shared_ptr<stream_channel> channel;
  {
    std::lock_guard lock(mutex_);
    auto it = channels_.find(chunk.id);
    if (it == channels_.end()) return false;
    channel = it->second;
  }
  channel->push(std::move(chunk));
  return true;
}

void stream_registry::fail_all(const failure& why) {
  std::vector<std::pair<int64_t, std::shared_ptr<stream_channel>>> open;
  {
    std::lock_guard lock(mutex_);
    open.assign(channels_.begin(), channels_.end());
  }
  for (auto& [id, channel] : open) channel->push(cluster::failed_chunk(id, why));
}

size_t stream_registry::size() const {
  std::lock_guard lock(mutex_);
  return channels_.size();
}

}  // namespace troupe::frontend
