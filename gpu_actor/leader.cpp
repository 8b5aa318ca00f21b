// The shard group leader's step loop (see leader.hpp).
//
// The loop is a message to itself: after each step, if work remains, the leader sends itself
// step_atom. New requests and aborts queued meanwhile are handled first (the mailbox is FIFO), so
// a request joins the batch at the next step and an abort frees its blocks before it.
#include "gpu_actor/leader.hpp"

#include "common/refusal_log.hpp"

#include <spdlog/spdlog.h>
#include <caf/all.hpp>
#include <algorithm>
#include <cmath>
#include <chrono>
#include <cstdio>
#include <unordered_map>

namespace troupe::gpu_actor {

using namespace cluster;

leader_resources::~leader_resources() {
  engine.reset();
  forward.reset();
  comm.reset();
  backend.reset();
  control.reset();
  for (auto& t : ranks) t.join();
}

namespace {

constexpr auto report_interval = std::chrono::seconds(1);

struct owner {
  int64_t request = 0;  // the router's id
  token_sink_actor sink;
  int32_t unfinished = 1;  // samples still running
  std::chrono::steady_clock::time_point arrived = std::chrono::steady_clock::now();
  bool started = false;    // its first token went out
};

struct leader_state {
  std::shared_ptr<leader_resources> res;
  group_info info;
  load_sink_actor load_sink;
  refusal_log refusals{"shard group"};
  std::unordered_map<int64_t, owner> owners;       // engine id -> owner
  std::unordered_map<int64_t, int64_t> engine_ids; // router id -> engine id
  bool step_queued = false;
  bool stopping = false;  // told to stop (drained): quit once the engine runs nothing
  int64_t reported_tokens = 0;
  std::vector<double> first_token_delays;  // seconds, of the requests that started since the last report
  std::chrono::steady_clock::time_point reported_at = std::chrono::steady_clock::now();
  static inline const char* name = "troupe.gpu_leader";
};

using leader_ptr = gpu_leader_actor::stateful_pointer<leader_state>;

void queue_step(leader_ptr self) {
  if (self->state.step_queued) return;
  self->state.step_queued = true;
  self->send(self, step_atom::value);
}

token_chunk to_chunk(int64_t request, engine::request_output& o) {
  token_chunk c;
  c.id = request;
  c.sample = o.sample;
  c.tokens = std::move(o.tokens);
  c.logprobs.reserve(o.logprobs.size());
  for (const auto& s : o.logprobs) {
    token_logprob lp{s.token, s.logprob, {}, {}};
    for (const auto& t : s.top) {
      lp.top_tokens.push_back(t.token);
      lp.top_logprobs.push_back(t.logprob);
    }
    c.logprobs.push_back(std::move(lp));
  }
  if (o.finish) c.finish = *o.finish;
  if (!o.error.empty()) c.error = failure{failure_code::internal, std::move(o.error), {}};
  return c;
}

// The p90 of the first-token delays since the last report, or the oldest waiting request's age if
// larger (a stuck queue shows even when nothing starts).
double queue_delay_p90(leader_state& st, std::chrono::steady_clock::time_point now) {
  double p90 = 0;
  auto& d = st.first_token_delays;
  if (!d.empty()) {
    const size_t k = std::min(d.size() - 1, size_t(std::ceil(0.9 * double(d.size()))) - 1);
    std::nth_element(d.begin(), d.begin() + std::ptrdiff_t(k), d.end());
    p90 = d[k];
  }
  for (const auto& [id, who] : st.owners)
    if (!who.started) p90 = std::max(p90, std::chrono::duration<double>(now - who.arrived).count());
  return p90;
}

// Runs one step and sends each owner the chunks of its requests in one message.
void run_step(leader_ptr self) {
  auto& st = self->state;
  auto outputs = st.res->engine->step();
  std::vector<std::pair<token_sink_actor, std::vector<token_chunk>>> batches;
  for (auto& o : outputs) {
    auto it = st.owners.find(o.request);
    if (it == st.owners.end()) continue;  // aborted by its owner: nobody is waiting for it
    owner& who = it->second;
    auto batch = std::find_if(batches.begin(), batches.end(), [&who](const auto& b) { return b.first == who.sink; });
    if (batch == batches.end()) batch = batches.insert(batches.end(), {who.sink, {}});
    if (!who.started && !o.tokens.empty()) {
      who.started = true;
      st.first_token_delays.push_back(
          std::chrono::duration<double>(std::chrono::steady_clock::now() - who.arrived).count());
    }
    batch->second.push_back(to_chunk(who.request, o));
    if (o.finish && --who.unfinished == 0) {
      st.engine_ids.erase(who.request);
      st.owners.erase(it);
    }
  }
  for (auto& [sink, chunks] : batches) self->send(sink, tokens_atom::value, std::move(chunks));
}

// A shard group whose rank died or hung cannot step again: the leader quits, so the router (which
// monitors it) drops the group, retries the requests that had not streamed a token elsewhere and
// ends the others with an error; the node sees its leader gone and exits.
bool leave_if_group_failed(leader_ptr self) {
  const auto& failure = self->state.res->engine->group_failure();
  if (!failure) return false;
  spdlog::warn("shard group {} stops: {}", self->state.info.name, failure->c_str());
  self->quit(caf::sec::runtime_error);
  return true;
}

// A stopping leader quits normally once its engine has nothing left to run.
bool quit_if_stopped(leader_ptr self) {
  if (!self->state.stopping || self->state.res->engine->has_unfinished()) return false;
  self->quit();
  return true;
}

// The group takes requests, aborts and stop from the router it registered with only: anyone else who
// reached the cluster port could otherwise run requests on it or end other clients' requests.
bool from_router(leader_ptr self) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender()) == self->state.load_sink.address();
}

void refuse(leader_ptr self, const char* what) {
  const auto& sender = self->current_sender();
  self->state.refusals.refused(std::string(what) + " from another actor than its router",
                               sender ? "node " + caf::to_string(sender->node()) : std::string("anonymous"));
}

load_report make_report(const leader_state& st) {
  const auto s = st.res->engine->stats();
  load_report r;
  r.group = st.info.name;
  r.running = int32_t(s.running);
  r.waiting = int32_t(s.waiting);
  r.kv_blocks_used = s.kv_blocks_used;
  r.kv_blocks_total = s.kv_blocks_total;
  r.preemptions = s.preemptions;
  r.prefix_hit_rate = s.prefix_hit_rate;
  r.generated_tokens = s.generated_tokens;
  r.tokens_per_s = s.tokens_per_s;
  return r;
}

}  // namespace

gpu_leader_actor spawn_leader(caf::actor_system& system, std::shared_ptr<leader_resources> resources,
                              group_info info, load_sink_actor load_sink) {
  auto fn = [](leader_ptr self, std::shared_ptr<leader_resources> res, group_info gi,
               load_sink_actor sink) -> gpu_leader_actor::behavior_type {
    self->state.res = std::move(res);
    self->state.info = std::move(gi);
    self->state.load_sink = std::move(sink);
    self->delayed_send(self, report_interval, tick_atom::value);
    return {
        [self](generate_atom, request& r, token_sink_actor& sink) {
          auto& st = self->state;
          if (!from_router(self)) return refuse(self, "a request");
          const int64_t request_id = r.id;
          const int32_t samples = std::max(r.n, 1);
          auto id = st.res->engine->add_request(std::move(r));
          if (!id) {  // what the router's checks could not see (this group's KV cache is too small)
            self->send(sink, tokens_atom::value,
                       std::vector<token_chunk>{failed_chunk(request_id, {failure_code::invalid_request, id.message(), {}})});
            return;
          }
          st.owners[*id] = owner{request_id, std::move(sink), samples};
          st.engine_ids[request_id] = *id;
          queue_step(self);
        },
        [self](abort_atom, int64_t request) {
          auto& st = self->state;
          if (!from_router(self)) return refuse(self, "an abort");
          auto it = st.engine_ids.find(request);
          if (it == st.engine_ids.end()) return;
          st.res->engine->abort(it->second);  // frees its blocks now
          st.owners.erase(it->second);
          st.engine_ids.erase(it);
          queue_step(self);  // the engine reports the abort at its next step
        },
        [self](stop_atom) {
          // Only the router this group registered with drains it (it sends stop once the group is empty).
          if (!from_router(self)) return refuse(self, "a stop");
          self->state.stopping = true;
          quit_if_stopped(self);
        },
        [self](leave_atom) {
          const auto& sender = self->current_sender();
          if (!sender || sender->node() != self->node()) return refuse(self, "a leave");
          auto& st = self->state;
          if (!st.load_sink) {  // no router to drain through: finish what runs, then quit
            st.stopping = true;
            quit_if_stopped(self);
            return;
          }
          spdlog::info("shard group {} leaving: the router drains it", st.info.name);
          self->send(st.load_sink, leave_atom::value, st.info.name);
        },
        [self](load_atom) -> load_report { return make_report(self->state); },
        [self](step_atom) {
          self->state.step_queued = false;
          run_step(self);
          if (leave_if_group_failed(self) || quit_if_stopped(self)) return;
          if (self->state.res->engine->has_unfinished()) queue_step(self);
        },
        [self](tick_atom) {
          auto& st = self->state;
          (void)st.res->engine->keep_group_alive();  // a failure shows in group_failure()
          if (leave_if_group_failed(self)) return;
          self->delayed_send(self, report_interval, tick_atom::value);
          if (!st.load_sink) {
            st.first_token_delays.clear();  // nobody to report to: keep the list bounded all the same
            return;
          }
          load_report r = make_report(st);
          const auto now = std::chrono::steady_clock::now();
          const double dt = std::chrono::duration<double>(now - st.reported_at).count();
          r.tokens_per_s = dt > 0 ? double(r.generated_tokens - st.reported_tokens) / dt : 0;
          st.reported_tokens = r.generated_tokens;
          st.reported_at = now;
          r.queue_delay_p90_s = queue_delay_p90(st, now);
          st.first_token_delays.clear();
          self->send(st.load_sink, load_atom::value, std::move(r));
        },
    };
  };
  // Scheduled, not detached: CAF 0.17's private threads can keep a stopped detached actor alive,
  // and ~actor_system then waits for it forever (actor-framework issues #1110 and #1196, fixed in
  // 0.18). A step blocks one scheduler thread while it runs; the node gives the scheduler one
  // thread more than its other actors need (node_config).
  return system.spawn(fn, std::move(resources), std::move(info), std::move(load_sink));
}

}  // namespace troupe::gpu_actor
