// run_rank_node (see node.hpp): a tensor-parallel rank process. It needs the actor system only to
// find its group (the router's directory, then the leader's rendezvous actor); after that every
// message it gets is a Gloo broadcast from the leader.
#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <thread>

#include "cli/cluster_join.hpp"
#include "cli/node.hpp"
#include "engine/executor/rank.hpp"
#include "gpu_actor/rendezvous.hpp"

namespace troupe::cli {

int run_rank_node(const node_options& o) {
  auto err = [](const std::string& m) {
    std::fprintf(stderr, "error: %s\n", m.c_str());
    return 1;
  };
  auto join_at = cluster::parse_host_port(o.join, "--join");
  if (!join_at) return err(join_at.message());
  auto m = engine::load_model(o.model);
  if (!m) return err(m.message());

  cluster::node_config cfg;
  if (auto ok = secure_cluster_port(cfg, o); !ok) return err(ok.message());
  caf::actor_system system{cfg};
  auto router = join_router(system, *join_at, o.join_timeout_s);
  if (!router) return err(router.message());
  const auto join_timeout = std::chrono::milliseconds(int64_t(o.join_timeout_s * 1000));
  auto rendezvous = gpu_actor::find_rendezvous(system, *router, o.name, join_timeout);
  if (!rendezvous) return err(rendezvous.message());
  auto store = gpu_actor::make_caf_store(system, *rendezvous);

  engine::rank_options ro;
  ro.model = *m;
  ro.rank = o.rank;
  ro.tp = o.tp;
  ro.group = o.name;
  ro.address = o.rank_address;
  ro.timeout = std::chrono::milliseconds(int64_t(o.rank_timeout_s * 1000));
  ro.connect_timeout = join_timeout;
  ro.threads = o.threads > 0 ? o.threads : int(std::max(1U, std::thread::hardware_concurrency()));
  ro.max_tokens = o.engine.max_batched_tokens;
  ro.device = o.device;
  ro.enforce_eager = o.engine.enforce_eager;
  spdlog::info("rank {} of shard group {} joining (tp {}, {} threads)", o.rank, o.name, o.tp,
               ro.threads);

  // The rank runs on its own thread; this one waits for it to end or for a stop signal.
  int done_pipe[2];
  if (::pipe2(done_pipe, O_CLOEXEC) != 0) return err("pipe2 failed");
  std::atomic<int> code{0};
  std::thread rank([&store, &ro, &code, &done_pipe]() {
    auto ran = engine::run_follower_rank(*store, ro);
    if (ran) {
      spdlog::info("rank {} of shard group {}: the leader stopped the group", ro.rank, ro.group);
    } else {
      spdlog::error("{}", ran.message());
      code = 4;
    }
    const char byte = 1;
    [[maybe_unused]] auto n = ::write(done_pipe[1], &byte, 1);
  });
  capture_stop_signals();
  const int stop_fd = stop_signal_fd();
  pollfd fds[2] = {{done_pipe[0], POLLIN, 0}, {stop_fd, POLLIN, 0}};
  while (::poll(fds, stop_fd >= 0 ? 2 : 1, -1) < 0 && errno == EINTR) {
  }
  if (!(fds[0].revents & POLLIN)) {
    // A rank cannot leave its group halfway: its thread may be inside a collective that only the
    // group's failure ends. The process exits now; the leader sees the rank gone and fails the group.
    spdlog::info("rank {} of shard group {} stopped by a signal", o.rank, o.name);
    std::fflush(stderr);
    ::_exit(0);
  }
  rank.join();
  ::close(done_pipe[0]);
  ::close(done_pipe[1]);
  return code;
}

}  // namespace troupe::cli
