// Gloo ranks as separate processes (fork) meeting through a file store: exact sums and broadcasts,
// and a rank process that dies fails the other within the timeout instead of hanging it.
#include <gtest/gtest.h>

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <functional>

#include "engine/parallel/gloo_communicator.hpp"
#include "tests/test_tmp.hpp"

namespace troupe::engine::parallel {
namespace {

using namespace std::chrono_literals;

std::string fresh_dir(const std::string& name) {
  static int counter = 0;
  return troupe::test::process_tmp() + "/" + name + "-" + std::to_string(counter++);
}

expected<std::unique_ptr<communicator>> join(const std::string& dir, int rank, int size) {
  auto store = make_file_store(dir);
  if (!store) return store.err();
  gloo_options o;
  o.rank = rank;
  o.size = size;
  o.timeout = 2s;
  return make_gloo_communicator(o, **store);
}

// Rank `r`'s part of the exchange: an all-reduce of known integers and a broadcast from rank 1.
std::string exchange(communicator& comm) {
  std::vector<float> x(50'000);
  for (size_t i = 0; i < x.size(); ++i) x[i] = float(comm.rank() + 1) * float(i % 101);
  if (auto r = comm.all_reduce_sum(x); !r) return r.message();
  for (size_t i = 0; i < x.size(); ++i)
    if (x[i] != 3.0f * float(i % 101)) return "sum differs at " + std::to_string(i);
  std::vector<std::byte> b(10'000, std::byte(comm.rank()));
  if (auto r = comm.broadcast(b, 1); !r) return r.message();
  for (auto v : b)
    if (v != std::byte(1)) return "broadcast differs";
  if (auto r = comm.barrier(); !r) return r.message();
  return "";
}

// Runs `child` in a forked process (which never returns into the test) and yields its pid. The
// child is killed by an alarm if it outlives 20 s, so a bug cannot leave it behind.
pid_t spawn(const std::function<int()>& child) {
  const pid_t pid = ::fork();
  if (pid == 0) {
    ::alarm(20);
    ::_exit(child());
  }
  return pid;
}

int exit_status(pid_t pid) {
  int status = 0;
  if (::waitpid(pid, &status, 0) != pid) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

TEST(gloo_processes, two_ranks_sum_and_broadcast_exactly) {
  const std::string dir = fresh_dir("two_ranks");
  const pid_t pid = spawn([&dir] {
    auto comm = join(dir, 1, 2);
    if (!comm) return 2;
    return exchange(**comm).empty() ? 0 : 3;
  });
  ASSERT_GT(pid, 0);
  auto comm = join(dir, 0, 2);
  ASSERT_TRUE(comm) << comm.message();
  EXPECT_EQ(exchange(**comm), "");
  EXPECT_EQ(exit_status(pid), 0);
}

TEST(gloo_processes, a_rank_process_killed_mid_collective_fails_the_other_within_the_timeout) {
  const std::string dir = fresh_dir("killed");
  const pid_t pid = spawn([&dir] {
    auto comm = join(dir, 1, 2);
    if (!comm) return 2;
    if (!(*comm)->barrier()) return 3;
    // Rank 0 is now inside a large all-reduce; this rank dies without a word.
    std::this_thread::sleep_for(300ms);
    ::kill(::getpid(), SIGKILL);
    return 4;
  });
  ASSERT_GT(pid, 0);
  auto comm = join(dir, 0, 2);
  ASSERT_TRUE(comm) << comm.message();
  ASSERT_TRUE((*comm)->barrier());
  std::vector<float> data(1'000'000, 1.0f);
  const auto start = std::chrono::steady_clock::now();
  auto r = (*comm)->all_reduce_sum(data);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(exit_status(pid), 128 + SIGKILL);
  ASSERT_FALSE(r);
  EXPECT_LT(took, 5.0);
  EXPECT_NE(r.message().find("gloo all_reduce_sum (rank 0 of 2"), std::string::npos) << r.message();
}

TEST(gloo_processes, a_rank_process_that_never_joins_fails_the_other_within_the_timeout) {
  const std::string dir = fresh_dir("absent");
  const auto start = std::chrono::steady_clock::now();
  auto comm = join(dir, 0, 2);
  const double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(comm);
  EXPECT_GE(took, 1.5);
  EXPECT_LT(took, 5.0);
  EXPECT_NE(comm.message().find("not set within 2000 ms"), std::string::npos) << comm.message();
}

}  // namespace
}  // namespace troupe::engine::parallel
