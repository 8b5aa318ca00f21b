// Gloo ranks as threads of one process: exact all-reduce sums and broadcasts for 2 and 4 ranks,
// and a peer that never joins, hangs or goes away fails the others within the timeout.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <future>

#include "engine/parallel/gloo_communicator.hpp"
#include "tests/engine/parallel/thread_ranks.hpp"

namespace troupe::engine::parallel {
namespace {

using namespace std::chrono_literals;
using test::run_thread_ranks;
using test::seconds_since;

// Small integers times small integers: every partial sum is exact in f32, so any summation order
// gives the same bits and the expected value is known exactly.
float value(int rank, size_t i) { return float(rank + 1) * float(int(i % 13) - 6); }

std::string check_all_reduce(communicator& comm, size_t n) {
  std::vector<float> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = value(comm.rank(), i);
  if (auto r = comm.all_reduce_sum(data); !r) return r.message();
  for (size_t i = 0; i < n; ++i) {
    float want = 0.0f;
    for (int k = 0; k < comm.size(); ++k) want += value(k, i);
    if (data[i] != want)
      return "n " + std::to_string(n) + ": element " + std::to_string(i) + " is " + std::to_string(data[i]) +
             ", want " + std::to_string(want);
  }
  return "";
}

std::string check_broadcast(communicator& comm, size_t n, int root) {
  std::vector<std::byte> data(n);
  for (size_t i = 0; i < n; ++i) data[i] = std::byte(uint8_t(i * 7 + size_t(comm.rank()) * 31));
  if (auto r = comm.broadcast(data, root); !r) return r.message();
  for (size_t i = 0; i < n; ++i)
    if (data[i] != std::byte(uint8_t(i * 7 + size_t(root) * 31)))
      return "broadcast from " + std::to_string(root) + ": byte " + std::to_string(i) + " differs";
  return "";
}

void expect_all_ok(const std::vector<std::string>& reports) {
  for (size_t r = 0; r < reports.size(); ++r) EXPECT_EQ(reports[r], "") << "rank " << r;
}

class gloo_ranks : public ::testing::TestWithParam<int> {};

TEST_P(gloo_ranks, all_reduce_sum_is_exact_on_every_rank) {
  // 1 and 3 elements: fewer than the ranks; 300'000: several of Gloo's 1 MiB ring segments.
  expect_all_ok(run_thread_ranks(GetParam(), 10s, [](communicator& comm) {
    for (size_t n : {size_t(1), size_t(3), size_t(1000), size_t(300'000)})
      if (auto e = check_all_reduce(comm, n); !e.empty()) return e;
    return std::string();
  }));
}

TEST_P(gloo_ranks, broadcast_copies_the_root_to_every_rank) {
  expect_all_ok(run_thread_ranks(GetParam(), 10s, [](communicator& comm) {
    for (int root = 0; root < comm.size(); ++root)
      for (size_t n : {size_t(1), size_t(4097), size_t(2'000'000)})
        if (auto e = check_broadcast(comm, n, root); !e.empty()) return e;
    return std::string();
  }));
}

TEST_P(gloo_ranks, collectives_interleave_and_barrier_waits_for_all) {
  std::atomic<int> arrived{0};
  expect_all_ok(run_thread_ranks(GetParam(), 10s, [&arrived](communicator& comm) {
    for (int step = 0; step < 20; ++step) {
      if (auto e = check_broadcast(comm, 64, step % comm.size()); !e.empty()) return e;
      if (auto e = check_all_reduce(comm, 257); !e.empty()) return e;
    }
    arrived.fetch_add(1);
    if (auto r = comm.barrier(); !r) return r.message();
    if (arrived.load() != comm.size()) return std::string("left the barrier before every rank arrived");
    if (auto r = comm.synchronize(); !r) return r.message();
    return std::string();
  }));
}

INSTANTIATE_TEST_SUITE_P(tp, gloo_ranks, ::testing::Values(2, 4));

TEST(gloo_communicator, a_group_of_one_needs_no_peer) {
  auto store = make_memory_store();
  gloo_options o;
  auto comm = make_gloo_communicator(o, *store);
  ASSERT_TRUE(comm) << comm.message();
  std::vector<float> x{1.5f, -2.0f};
  ASSERT_TRUE((*comm)->all_reduce_sum(x));
  EXPECT_EQ(x[0], 1.5f);
  EXPECT_FALSE((*comm)->broadcast(std::as_writable_bytes(std::span(x)), 1));
}

TEST(gloo_communicator, bad_options_are_errors) {
  auto store = make_memory_store();
  gloo_options o;
  o.size = 2;
  o.rank = 2;
  auto comm = make_gloo_communicator(o, *store);
  ASSERT_FALSE(comm);
  EXPECT_NE(comm.message().find("rank out of range"), std::string::npos) << comm.message();
  o.rank = 0;
  o.timeout = 0ms;
  EXPECT_FALSE(make_gloo_communicator(o, *store));
  o.timeout = 1s;
  o.address = "203.0.113.1";  // TEST-NET-3: not an address of this host, so it cannot be bound
  auto unbound = make_gloo_communicator(o, *store);
  ASSERT_FALSE(unbound);
  EXPECT_NE(unbound.message().find("cannot listen on address 203.0.113.1"), std::string::npos) << unbound.message();
}

TEST(gloo_communicator, a_rank_that_never_joins_fails_the_others_within_the_timeout) {
  // Ranks 0 and 1 of a group of 3; rank 2 never comes.
  auto store = make_memory_store();
  const auto start = std::chrono::steady_clock::now();
  auto join = [&store](int rank) {
    gloo_options o;
    o.rank = rank;
    o.size = 3;
    o.timeout = 2s;
    auto comm = make_gloo_communicator(o, *store);
    return comm ? std::string() : comm.message();
  };
  auto other = std::async(std::launch::async, join, 1);
  const std::string e0 = join(0);
  const std::string e1 = other.get();
  EXPECT_LT(seconds_since(start), 6.0);
  for (const auto& e : {e0, e1}) {
    EXPECT_NE(e.find("could not connect the group within 2000 ms"), std::string::npos) << e;
    EXPECT_NE(e.find("'gloo/2'"), std::string::npos) << e;  // names the missing rank's key
  }
}

TEST(gloo_communicator, a_hung_rank_fails_the_collective_within_the_timeout_and_breaks_the_group) {
  std::promise<void> rank0_done;
  auto done = rank0_done.get_future().share();
  std::chrono::duration<double> took{};
  auto reports = run_thread_ranks(2, 2s, [&rank0_done, done, &took](communicator& comm) {
    if (comm.rank() == 1) {
      done.wait();  // hung: never enters the collective
      return std::string();
    }
    std::vector<float> data(1000, 1.0f);
    const auto start = std::chrono::steady_clock::now();
    auto r = comm.all_reduce_sum(data);
    took = std::chrono::steady_clock::now() - start;
    std::string report = r ? "all_reduce_sum succeeded without its peer" : r.message();
    auto again = comm.barrier();  // broken: fails at once with the first error
    if (again || again.message() != report) report += " | later call: " + (again ? "ok" : again.message());
    rank0_done.set_value();
    return report;
  });
  EXPECT_GE(took.count(), 1.5);
  EXPECT_LT(took.count(), 5.0);
  EXPECT_NE(reports[0].find("gloo all_reduce_sum (rank 0 of 2"), std::string::npos) << reports[0];
  EXPECT_NE(reports[0].find("the group is broken"), std::string::npos) << reports[0];
  EXPECT_EQ(reports[0].find("later call"), std::string::npos) << reports[0];
  EXPECT_EQ(reports[1], "");
}

TEST(gloo_communicator, a_rank_that_goes_away_mid_collective_fails_its_peers_within_the_timeout) {
  auto store = make_memory_store();
  std::promise<void> joined;
  auto leaver = std::async(std::launch::async, [&store, &joined] {
    gloo_options o;
    o.rank = 1;
    o.size = 2;
    o.timeout = 2s;
    auto comm = make_gloo_communicator(o, *store);
    joined.set_value();
    if (!comm) return comm.message();
    std::this_thread::sleep_for(200ms);  // rank 0 is inside the all-reduce by now
    return std::string();                // and the communicator (its sockets) goes away
  });
  gloo_options o;
  o.size = 2;
  o.timeout = 2s;
  auto comm = make_gloo_communicator(o, *store);
  ASSERT_TRUE(comm) << comm.message();
  joined.get_future().wait();
  std::vector<float> data(100'000, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  auto r = (*comm)->all_reduce_sum(data);
  const double took = seconds_since(start);
  EXPECT_EQ(leaver.get(), "");
  ASSERT_FALSE(r);
  EXPECT_LT(took, 5.0);
  EXPECT_NE(r.message().find("the group is broken"), std::string::npos) << r.message();
}

}  // namespace
}  // namespace troupe::engine::parallel
