// A few threads that run what would stall the kj thread: a big request's chat template and
// tokenizer (a 3.5 MB chat request takes seconds), so /health, small requests and every open stream
// stay fast while it is prepared. Each job's result comes back to the kj thread as a promise.
//
// Bounds: the jobs waiting are the requests admitted and not yet prepared, which admission bounds
// (--max-queued-requests); the pool adds no queue of its own beyond them.
// Threading: run() on one kj thread (the promise belongs to it); jobs run on the pool's threads and
// must only read what outlives the pool. Destroying the pool finishes the running jobs, drops the
// waiting ones (their promises reject as DISCONNECTED) and joins the threads.
#pragma once

#include <kj/async.h>
#include <kj/function.h>

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace troupe::frontend {

class work_pool {
 public:
  explicit work_pool(int threads);  // threads >= 1
  ~work_pool();
  work_pool(const work_pool&) = delete;
  work_pool& operator=(const work_pool&) = delete;

  // Runs `job` (returning T) on a pool thread; the promise resolves on the calling kj thread. A
  // promise dropped early (the client left) lets the job finish and discards its result.
  template <class T, class F>
  [[nodiscard]] kj::Promise<T> run(F&& job) {
    auto paf = kj::newPromiseAndCrossThreadFulfiller<T>();
    post([job = kj::fwd<F>(job), fulfiller = kj::mv(paf.fulfiller)]() mutable { fulfiller->fulfill(job()); });
    return kj::mv(paf.promise);
  }

 private:
  void post(kj::Function<void()> job);
  void loop();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<kj::Function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace troupe::frontend
