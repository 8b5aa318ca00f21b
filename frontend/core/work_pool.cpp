// The front end's work pool (see work_pool.hpp).
#include "frontend/core/work_pool.hpp"

#include <algorithm>

namespace troupe::frontend {

work_pool::work_pool(int threads) {
  for (int i = 0; i < std::max(threads, 1); ++i) threads_.emplace_back([this]() { loop(); });
}

work_pool::~work_pool() {
  std::deque<kj::Function<void()>> dropped;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped.swap(jobs_);
  }
  wake_.notify_all();
  for (auto& t : threads_) t.join();
  // `dropped` goes out of scope here: each unfulfilled fulfiller rejects its promise.
}

void work_pool::post(kj::Function<void()> job) {
  {
    std::lock_guard lock(mutex_);
    jobs_.push_back(kj::mv(job));
  }
  wake_.notify_one();
}

void work_pool::loop() {
  while (true) {
    kj::Function<void()> job;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this]() { return stopping_ || !jobs_.empty(); });
      if (stopping_) return;
      job = kj::mv(jobs_.front());
      jobs_.pop_front();
    }
    try {
      job();
    } catch (...) {
      // A job that throws (out of memory) leaves its fulfiller unfulfilled: its promise rejects
      // when the job is destroyed here, and the request fails instead of the pool thread.
    }
  }
}

}  // namespace troupe::frontend
