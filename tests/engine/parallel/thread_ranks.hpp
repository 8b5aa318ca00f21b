// Test helper: a shard group of Gloo ranks that are threads of this process, meeting through one
// in-memory store, each running the same body; the per-rank outcomes come back as strings.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "engine/parallel/gloo_communicator.hpp"

namespace troupe::engine::parallel::test {

// What a rank's body reports: "" when everything it checked held, else what went wrong.
using rank_body = std::function<std::string(communicator& comm)>;

// Connects `size` thread ranks (the timeout bounds connecting and every collective) and runs
// `body` on each; returns each rank's report, or "connect: <error>" when it could not join.
inline std::vector<std::string> run_thread_ranks(int size, std::chrono::milliseconds timeout, const rank_body& body) {
  auto store = make_memory_store();
  std::vector<std::string> reports(static_cast<size_t>(size));
  std::vector<std::thread> threads;
  for (int r = 0; r < size; ++r) {
    threads.emplace_back([r, size, timeout, &store, &body, &reports] {
      gloo_options o;
      o.rank = r;
      o.size = size;
      o.timeout = timeout;
      auto comm = make_gloo_communicator(o, *store);
      if (!comm) {
        reports[size_t(r)] = "connect: " + comm.message();
        return;
      }
      reports[size_t(r)] = body(**comm);
    });
  }
  for (auto& t : threads) t.join();
  return reports;
}

// Seconds since `start`, for "failed within the timeout" checks.
inline double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace troupe::engine::parallel::test
