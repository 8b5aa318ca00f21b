// The autoscaler actor (see autoscaler_actor.hpp).
#include "autoscaler/autoscaler_actor.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <cmath>
#include <deque>
#include <map>
#include <optional>
#include <utility>

namespace troupe::autoscaler {

using namespace troupe::cluster;

namespace {

enum class phase { starting, serving, draining };

struct worker_slot {
  phase at = phase::starting;
  clock::time_point started;
  clock::time_point since;       // of the current phase
  bool stop_sent = false;        // the launcher was told to stop it
  bool counted = false;          // already counted as a failure (start timeout): not again at its exit
};

struct autoscaler_state {
  autoscaler_options options;
  autoscaler_parts parts;
  std::map<std::string, worker_slot> workers;  // by group name: what this autoscaler started
  std::map<std::string, group_status> groups;  // the registry's view, by name
  int64_t next_id = 0;
  std::deque<clock::time_point> failures;      // within failure_window_s
  int32_t consecutive_failures = 0;
  clock::time_point next_start = clock::time_point::min();
  bool failed = false;
  bool ever_served = false;
  int32_t last_desired = -1;
  std::string last_error;
  gauge* desired_gauge = nullptr;
  gauge* actual_gauge = nullptr;
  gauge* failed_gauge = nullptr;
  histogram* cold_start = nullptr;
  static inline const char* name = "troupe.autoscaler";
};

using autoscaler_ptr = autoscaler_actor::stateful_pointer<autoscaler_state>;

clock::duration seconds(double s) {
  return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
}

void count(autoscaler_ptr self, const std::string& direction, const std::string& reason) {
  if (auto* m = self->state.parts.metrics)
    m->counter("troupe_autoscaler_decisions_total", "Autoscaler actions by direction and reason",
               {{"direction", direction}, {"reason", reason}})
        .inc();
}

int32_t actual(const autoscaler_state& st) {
  int32_t n = 0;
  for (const auto& [name, w] : st.workers) n += w.at != phase::draining;
  return n;
}

void start_one(autoscaler_ptr self, const std::string& why) {
  auto& st = self->state;
  const std::string name = st.options.group_prefix + std::to_string(st.next_id++);
  if (auto ok = st.parts.workers->start(name); !ok) {
    spdlog::error("autoscaler: cannot start worker {} for '{}': {}", name, st.options.model, ok.message());
    st.last_error = ok.message();
    st.failures.push_back(clock::now());
    ++st.consecutive_failures;
    return;
  }
  st.workers[name] = worker_slot{phase::starting, clock::now(), clock::now()};
  spdlog::info("autoscaler: starting worker {} for '{}' ({}): {}", name, st.options.model,
               st.parts.workers->describe(), why);
}

// The least loaded serving group this autoscaler started (never one still starting): fewest
// requests in flight, then fewest outstanding tokens.
std::optional<std::string> least_loaded(const autoscaler_state& st) {
  std::optional<std::string> best;
  std::pair<int64_t, int64_t> best_load;
  for (const auto& [name, w] : st.workers) {
    if (w.at != phase::serving) continue;
    auto g = st.groups.find(name);
    const std::pair<int64_t, int64_t> load =
        g == st.groups.end() ? std::pair<int64_t, int64_t>{0, 0}
                             : std::pair{g->second.in_flight, g->second.outstanding_tokens};
    if (!best || load < best_load) {
      best = name;
      best_load = load;
    }
  }
  return best;
}

// Drains group `name` through the registry: nothing new is routed to it, its requests finish, then
// its leader is told to stop and its worker exits. reap() has the launcher stop the worker if it
// still runs past the drain deadline; the launcher stops it at once if the registry refuses.
void drain_one(autoscaler_ptr self, const std::string& name, const std::string& why) {
  auto& st = self->state;
  worker_slot& w = st.workers[name];
  w.at = phase::draining;
  w.since = clock::now();
  spdlog::info("autoscaler: draining worker {} of '{}': {}", name, st.options.model, why);
  self->request(st.parts.registry, std::chrono::seconds(10), drain_atom::value, name)
      .then([](const group_status&) {},
            [self, name](const caf::error& e) {
              auto it = self->state.workers.find(name);
              if (it == self->state.workers.end() || it->second.stop_sent) return;
              spdlog::warn("autoscaler: the registry did not drain {} ({}); stopping its worker", name,
                           self->system().render(e));
              it->second.stop_sent = true;
              self->state.parts.workers->stop(name, std::chrono::seconds(5));
            });
}

void mark_failed(autoscaler_ptr self) {
  auto& st = self->state;
  if (st.failed) return;
  st.failed = true;
  if (st.failed_gauge) st.failed_gauge->set(1);
  const std::string why = st.last_error.empty() ? "no error line" : st.last_error;
  const std::string what = std::to_string(st.failures.size()) + " worker failures within " +
                           std::to_string(int(st.options.failure_window_s)) + " s; last error: " + why;
  spdlog::error("autoscaler: model '{}' failed: {}", st.options.model, what);
  if (st.parts.on_failed) st.parts.on_failed(what);
  if (!st.ever_served && st.parts.give_up)
    st.parts.give_up(5, "no worker could start for '" + st.options.model + "': " + why);
}

void reap(autoscaler_ptr self) {
  auto& st = self->state;
  const auto now = clock::now();
  for (worker_exit& e : st.parts.workers->poll()) {
    auto it = st.workers.find(e.name);
    const bool drained = it != st.workers.end() && it->second.at == phase::draining;
    const bool counted = it != st.workers.end() && it->second.counted;
    if (it != st.workers.end()) st.workers.erase(it);
    if (drained && e.status == 0) {
      spdlog::info("autoscaler: worker {} drained and stopped", e.name);
      continue;
    }
    if (counted) {  // stopped at its start timeout, counted then
      spdlog::info("autoscaler: worker {} stopped (status {})", e.name, e.status);
      continue;
    }
    if (e.status == 0) {  // drained by someone else (SIGTERM to the worker): not a failure
      spdlog::info("autoscaler: worker {} of '{}' stopped cleanly (drained from outside)", e.name, st.options.model);
      count(self, "replace", "worker stopped");
      continue;
    }
    if (!e.last_error.empty()) st.last_error = e.last_error;
    spdlog::warn("autoscaler: worker {} of '{}' exited with status {}{}{}", e.name, st.options.model, e.status,
                 e.last_error.empty() ? "" : ": ", e.last_error);
    count(self, "replace", "worker exited");
    st.failures.push_back(now);
    ++st.consecutive_failures;
    const double backoff = std::min(st.options.backoff_max_s,
                                    st.options.backoff_initial_s * std::pow(2.0, st.consecutive_failures - 1));
    st.next_start = now + seconds(st.consecutive_failures > 1 ? backoff : 0);
  }
  for (auto& [name, w] : st.workers) {
    if (w.stop_sent) continue;
    if (w.at == phase::starting && now - w.started >= seconds(st.options.start_timeout_s)) {
      // Its group has not registered in time: a failure; stop it.
      spdlog::warn("autoscaler: worker {} did not register within {} s; stopping it", name, st.options.start_timeout_s);
      st.last_error =
          "worker " + name + " did not register within " + std::to_string(int(st.options.start_timeout_s)) + " s";
      st.parts.workers->stop(name, std::chrono::seconds(2));
      w = worker_slot{phase::draining, w.started, now, true, true};
      st.failures.push_back(now);
      ++st.consecutive_failures;
    } else if (w.at == phase::draining && now - w.since >= seconds(st.options.drain_timeout_s + 5)) {
      // Drained past its deadline and still running: the registry ended its requests by now.
      spdlog::warn("autoscaler: worker {} still runs {} s after its drain began; stopping it", name,
                   st.options.drain_timeout_s + 5);
      st.parts.workers->stop(name, std::chrono::seconds(5));
      w.stop_sent = true;
    }
  }
  while (!st.failures.empty() && now - st.failures.front() > seconds(st.options.failure_window_s))
    st.failures.pop_front();
  if (int32_t(st.failures.size()) >= st.options.max_failures) mark_failed(self);
}

void decide(autoscaler_ptr self) {
  auto& st = self->state;
  const auto now = clock::now();
  observation o;
  o.now = now;
  o.current = actual(st);
  o.held = st.parts.held ? st.parts.held() : 0;
  for (const auto& [name, w] : st.workers) {
    if (w.at != phase::serving) continue;
    auto g = st.groups.find(name);
    if (g == st.groups.end()) continue;
    const group_status& s = g->second;
    group_load l;
    l.name = name;
    l.running = s.load.running;
    l.waiting = s.load.waiting;
    l.in_flight = s.in_flight;
    l.outstanding_tokens = s.outstanding_tokens;
    l.kv_used = s.load.kv_blocks_total > 0 ? double(s.load.kv_blocks_used) / s.load.kv_blocks_total : 0;
    l.queue_delay_p90_s = s.load.queue_delay_p90_s;
    o.serving.push_back(std::move(l));
  }
  decision d = st.parts.policy->decide(o);
  d.desired = std::clamp(d.desired, st.options.min_replicas, st.options.max_replicas);
  if (st.desired_gauge) st.desired_gauge->set(d.desired);
  if (st.actual_gauge) st.actual_gauge->set(o.current);
  const bool changed = d.desired != st.last_desired;
  if (changed && st.last_desired >= 0)
    spdlog::info("autoscaler: '{}' {} -> {} replicas wanted: {}{}", st.options.model, st.last_desired, d.desired,
                 d.reason, st.options.dry_run ? " (dry run: not acted on)" : "");
  st.last_desired = d.desired;
  if (st.failed) return;
  // In dry run it keeps the minimum it started (replacing what dies) and acts on no policy change.
  const int32_t want = st.options.dry_run ? st.options.min_replicas : d.desired;
  if (want > o.current) {
    if (now < st.next_start) return;  // backing off while workers keep failing
    count(self, "up", o.current < st.options.min_replicas ? "below minimum" : "policy");
    start_one(self, "replicas " + std::to_string(o.current) + " -> " + std::to_string(want) + ": " + d.reason);
  } else if (want < o.current) {
    if (auto victim = least_loaded(st)) {
      count(self, "down", "policy");
      drain_one(self, *victim, "replicas " + std::to_string(o.current) + " -> " + std::to_string(want) + ": " + d.reason);
    }
  }
}

void on_event(autoscaler_ptr self, const registry_event& e) {
  auto& st = self->state;
  const std::string& name = e.group.info.name;
  switch (e.change) {
    case registry_change::joined:
    case registry_change::load:
    case registry_change::state: {
      st.groups[name] = e.group;
      auto it = st.workers.find(name);
      if (e.change == registry_change::joined && it != st.workers.end() && it->second.at == phase::starting) {
        it->second.at = phase::serving;
        const double s = std::chrono::duration<double>(clock::now() - it->second.started).count();
        spdlog::info("autoscaler: worker {} of '{}' serves, {:.1f} s after its start", name, st.options.model, s);
        if (st.cold_start) st.cold_start->observe(s);
        if (st.parts.on_cold_start) st.parts.on_cold_start(s);
        st.ever_served = true;
        st.consecutive_failures = 0;
      }
      break;
    }
    case registry_change::left:
      st.groups.erase(name);
      break;
  }
}

}  // namespace

autoscaler_actor spawn_autoscaler(caf::actor_system& system, autoscaler_options options, autoscaler_parts parts) {
  auto fn = [](autoscaler_ptr self, autoscaler_options o, autoscaler_parts p) -> autoscaler_actor::behavior_type {
    auto& st = self->state;
    st.options = std::move(o);
    st.parts = std::move(p);
    if (auto* m = st.parts.metrics) {
      st.desired_gauge = &m->gauge("troupe_autoscaler_desired_replicas", "Shard groups the autoscaler wants");
      st.actual_gauge = &m->gauge("troupe_autoscaler_actual_replicas", "Shard groups running or starting");
      st.failed_gauge = &m->gauge("troupe_autoscaler_model_failed", "1 when workers kept failing and starts stopped");
      st.cold_start = &m->histogram("troupe_autoscaler_cold_start_seconds", "From a worker's start to its group serving",
                                    {0.5, 1, 2, 5, 10, 30, 60, 120});
    }
    // Follow the registry; what it lists now counts as joined.
    self->request(st.parts.registry, std::chrono::seconds(10), subscribe_atom::value,
                  caf::actor_cast<registry_subscriber_actor>(self))
        .then(
            [self](const std::vector<group_status>& now) {
              for (const group_status& g : now) self->state.groups[g.info.name] = g;
            },
            [self](const caf::error& e) {
              spdlog::error("autoscaler: cannot follow the registry: {}", self->system().render(e));
            });
    self->send(self, tick_atom::value);
    const auto from_registry = [self]() {
      return caf::actor_cast<caf::actor_addr>(self->current_sender()) == self->state.parts.registry.address();
    };
    return {
        [self, from_registry](registry_atom, const registry_event& e) {
          if (!from_registry()) {
            spdlog::warn("autoscaler: refused a registry event from an actor other than its registry");
            return;
          }
          on_event(self, e);
        },
        [self](tick_atom) {
          if (caf::actor_cast<caf::actor_addr>(self->current_sender()) != self->address()) return;
          reap(self);
          decide(self);
          self->delayed_send(self, seconds(self->state.options.tick_s), tick_atom::value);
        },
    };
  };
  return system.spawn(fn, std::move(options), std::move(parts));
}

}  // namespace troupe::autoscaler
