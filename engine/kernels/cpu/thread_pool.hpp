// A fixed pool of worker threads for data-parallel kernels. The calling thread takes part, so a
// pool of N threads starts N-1 workers.
// Threading contract: parallel_for is called from one thread at a time (the engine's step thread);
// it returns when every chunk has run. Not reentrant: `fn` must not call parallel_for.
#pragma once

#include <cstdint>
#include <functional>

namespace troupe::engine::cpu {

class thread_pool {
 public:
  explicit thread_pool(int n_threads);  // n_threads <= 0: std::thread::hardware_concurrency()
  ~thread_pool();
  thread_pool(const thread_pool&) = delete;
  thread_pool& operator=(const thread_pool&) = delete;

  [[nodiscard]] int size() const;

  // Calls fn(thread_index, begin, end) over [0, n) split into size() contiguous chunks, each
  // chunk a multiple of `grain` (except the last).
  void parallel_for(int64_t n, int64_t grain,
                    const std::function<void(int thread, int64_t begin, int64_t end)>& fn);

 private:
  struct impl;
  impl* impl_;
};

}  // namespace troupe::engine::cpu
