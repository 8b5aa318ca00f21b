// The kernels' worker pool: persistent threads woken by a generation counter, spinning briefly
// before sleeping on a condition variable, so back-to-back parallel_for calls cost ~1 µs each.
#include "engine/kernels/cpu/thread_pool.hpp"

#include <immintrin.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::engine::cpu {

namespace {

// How long an idle worker spins before it sleeps. Decode issues a parallel_for every ~50-500 µs,
// so this keeps workers awake through a token while an idle engine stops burning the core soon.
constexpr auto spin_budget = std::chrono::microseconds(2000);
constexpr int pure_spins = 2000;  // ~20-50 µs of _mm_pause before yielding

}  // namespace

struct thread_pool::impl {
  using job_fn = std::function<void(int, int64_t, int64_t)>;

  int n_threads = 1;
  std::vector<std::thread> workers;

  // The job being run: written by the caller before it bumps `generation`, read by workers after
  // they observe the bump (release/acquire on `generation`).
  const job_fn* fn = nullptr;
  int64_t n = 0;
  int64_t chunk = 0;

  std::atomic<uint32_t> generation{0};
  std::atomic<int> pending{0};    // workers that have not finished the current generation
  std::atomic<int> sleepers{0};   // workers blocked (or about to block) on `wake`
  std::atomic<bool> stopping{false};
  std::mutex mutex;
  std::condition_variable wake;

  void run_chunk(int thread) const {
    const int64_t begin = int64_t(thread) * chunk;
    const int64_t end = std::min(n, begin + chunk);
    if (begin < end) (*fn)(thread, begin, end);
  }

  // Waits until `generation` differs from `seen` (or the pool stops); returns the new value.
  // Pure spinning first (lowest latency), then spinning with yields so a thread that shares this
  // core (an oversubscribed pool, other processes) can run, then sleeping.
  uint32_t await_generation(uint32_t seen) {
    const auto start = std::chrono::steady_clock::now();
    for (int spins = 0;; ++spins) {
      const uint32_t g = generation.load(std::memory_order_acquire);
      if (g != seen || stopping.load(std::memory_order_acquire)) return g;
      if (spins < pure_spins) {
        _mm_pause();
      } else {
        std::this_thread::yield();
        if ((spins & 15) == 0 && std::chrono::steady_clock::now() - start > spin_budget) break;
      }
    }
    std::unique_lock lock(mutex);
    // seq_cst increment then seq_cst load pairs with the caller's bump-then-check of `sleepers`:
    // either we see the new generation here or the caller sees us and notifies under the mutex.
    sleepers.fetch_add(1);
    wake.wait(lock, [&] { return generation.load() != seen || stopping.load(); });
    sleepers.fetch_sub(1);
    return generation.load(std::memory_order_acquire);
  }

  void worker_loop(int thread) {
    uint32_t seen = 0;
    for (;;) {
      seen = await_generation(seen);
      if (stopping.load(std::memory_order_acquire)) return;
      run_chunk(thread);
      pending.fetch_sub(1, std::memory_order_acq_rel);
    }
  }
};

thread_pool::thread_pool(int n_threads) : impl_(new impl) {
  if (n_threads <= 0) n_threads = int(std::max(1u, std::thread::hardware_concurrency()));
  impl_->n_threads = n_threads;
  impl_->workers.reserve(size_t(n_threads - 1));
  for (int t = 1; t < n_threads; ++t) impl_->workers.emplace_back([this, t] { impl_->worker_loop(t); });
}

thread_pool::~thread_pool() {
  {
    std::lock_guard lock(impl_->mutex);
    impl_->stopping.store(true);
  }
  impl_->wake.notify_all();
  for (auto& w : impl_->workers) w.join();
  delete impl_;
}

int thread_pool::size() const { return impl_->n_threads; }

void thread_pool::parallel_for(int64_t n, int64_t grain,
                               const std::function<void(int, int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  const int threads = impl_->n_threads;
  const int64_t grains = (n + grain - 1) / grain;
  const int64_t chunk = (grains + threads - 1) / threads * grain;
  if (threads == 1 || chunk >= n) {  // one chunk: waking workers would only add latency
    fn(0, 0, n);
    return;
  }
  impl& p = *impl_;
  p.fn = &fn;
  p.n = n;
  p.chunk = chunk;
  p.pending.store(threads - 1, std::memory_order_relaxed);
  p.generation.fetch_add(1);  // seq_cst: publishes the job, ordered before the sleepers check
  if (p.sleepers.load() > 0) {
    // A worker that counted itself a sleeper holds the mutex until it is inside wait(), so taking
    // it here guarantees the notify reaches it.
    { std::lock_guard lock(p.mutex); }
    p.wake.notify_all();
  }
  p.run_chunk(0);
  // Workers finish their chunks at about the same time as ours; spin, then yield if preempted.
  for (int spins = 0; p.pending.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < pure_spins) {
      _mm_pause();
    } else {
      std::this_thread::yield();
    }
  }
}

}  // namespace troupe::engine::cpu
