// The router actor (see router_actor.hpp).
#include "router/router_actor.hpp"

#include "common/refusal_log.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <caf/all.hpp>
#include <map>
#include <cmath>
#include <optional>
#include <unordered_map>
#include <xxhash.h>

namespace troupe::router {

using namespace cluster;

namespace {

struct group_entry {
  group_status status;  // what the registry lists
  gpu_leader_actor leader;
  uint64_t key = 0;     // for the policy's hash ring
  bool stop_sent = false;  // draining and empty: the leader was told to stop
  int64_t seqs = 0;        // sequences sent and not finished (running or waiting at the group)
  int64_t started = 0;     // of them, those of requests that have streamed a token
};

struct flight {
  request req;
  cache_key key;             // empty: not to be cached
  std::vector<token_chunk> stored;  // with a key: each sample's whole output so far, to store at the end
  std::chrono::steady_clock::time_point looked_up;  // when the cache lookup was sent
  std::string group;         // where it runs (empty while the cache is asked or it waits in the fair queue)
  std::string avoid;         // a group that failed it: not routed there again
  bool streamed = false;     // a token reached the client: a retry must resume after it
  std::vector<int32_t> sent; // n = 1: every token sent to the client so far (what a resume prefills)
  int32_t unfinished = 1;    // samples still running
  int32_t retries = 0;
  int64_t outstanding = 0;   // what it still adds to its group's outstanding_tokens
  int32_t seqs = 0;          // what it adds to its group's seqs
};

struct router_state {
  router_options options;
  histogram* hit_latency = nullptr;  // lookup sent -> hit replayed
  counter* stores = nullptr;
  chunk_delivery deliver;
  std::shared_ptr<cluster_view> view;
  std::map<std::string, group_entry> groups;  // by name
  std::unordered_map<int64_t, flight> flights;
  std::vector<registry_subscriber_actor> subscribers;  // monitored
  // Where the ranks of each forming or running tensor-parallel group meet, by group name (the
  // leader's store actor, monitored: removed when its node goes away).
  std::map<std::string, rendezvous_actor> rendezvous;
  refusal_log refusals{"router"};
  fair_queue held;                   // requests waiting for room in a group
  gauge* held_gauge = nullptr;
  static inline const char* name = "troupe.router";
};

using router_ptr = router_actor::stateful_pointer<router_state>;

// Who sent the message being handled, for the log: its node ("anonymous" when it gave no sender).
std::string peer_of(router_ptr self) {
  const auto& sender = self->current_sender();
  if (!sender) return "anonymous";
  return sender->node() == self->node() ? "this node" : "node " + caf::to_string(sender->node());
}

void log_refusal(router_ptr self, const std::string& what) { self->state.refusals.refused(what, peer_of(self)); }

// True when the message being handled comes from an actor of the router's own node (a front end,
// the autoscaler, the admin console). An anonymous message proves nothing: a remote peer can send one.
bool from_this_node(router_ptr self) {
  const auto& sender = self->current_sender();
  return sender && sender->node() == self->node();
}

// True when the message being handled comes from the leader of group `g`.
bool from_leader(router_ptr self, const group_entry& g) {
  return caf::actor_cast<caf::actor_addr>(self->current_sender()) == g.leader.address();
}

std::vector<group_status> statuses(const router_state& st) {
  std::vector<group_status> out;
  out.reserve(st.groups.size());
  for (const auto& [name, g] : st.groups) out.push_back(g.status);
  return out;
}

// Queued requests the serving groups hold themselves (cluster_view::room).
int64_t room_of(const router_state& st) {
  int64_t room = 0;
  for (const auto& [name, g] : st.groups)
    if (g.status.state == group_state::serving && g.status.info.max_running > 0)
      room += std::max<int64_t>(0, int64_t(g.status.info.max_running) + st.options.group_queue - g.started);
  return room;
}

void publish(router_ptr self) { self->state.view->set(statuses(self->state), room_of(self->state)); }

// Tells every subscriber what changed.
void notify(router_ptr self, registry_change change, const group_status& g, std::string reason = {}) {
  if (self->state.subscribers.empty()) return;
  registry_event e{change, g, std::move(reason)};
  for (const auto& s : self->state.subscribers) self->send(s, registry_atom::value, e);
}

// A draining group that runs nothing more is told to stop; it leaves the registry when it has quit.
void stop_if_drained(router_ptr self, group_entry& g) {
  if (g.status.state != group_state::draining || g.status.in_flight > 0 || g.stop_sent) return;
  g.stop_sent = true;
  self->send(g.leader, stop_atom::value);
}

void fail_request(router_ptr self, int64_t id, failure_code code, std::string why) {
  self->state.deliver(failed_chunk(id, {code, std::move(why), {}}));
}

// Takes the request off its group's books (and stops the group if it was the last of a drain).
void settle(router_ptr self, flight& f) {
  auto g = self->state.groups.find(f.group);
  if (g == self->state.groups.end()) return;
  g->second.status.outstanding_tokens -= f.outstanding;
  g->second.status.in_flight -= 1;
  g->second.seqs -= f.seqs;
  if (f.streamed) g->second.started -= f.seqs;
  self->state.held.settled(f.req.tenant);
  f.outstanding = 0;
  f.seqs = 0;
  stop_if_drained(self, g->second);
}

// True when `g` may be sent `seqs` more sequences now: within its max_running plus the group queue
// (a group that runs nothing takes any request, however many samples it has).
bool has_room(const router_state& st, const group_entry& g, int32_t seqs) {
  const int32_t cap = g.status.info.max_running;
  return cap <= 0 || g.seqs == 0 || g.seqs + seqs <= int64_t(cap) + st.options.group_queue;
}

bool any_serving(const router_state& st) {
  return std::any_of(st.groups.begin(), st.groups.end(),
                     [](const auto& e) { return e.second.status.state == group_state::serving; });
}

// Routes `f` (not yet on any group's books) and sends it with `priority`; false when no group is
// live (or, with `within_room`, none has room).
bool dispatch(router_ptr self, flight& f, bool within_room, int32_t priority) {
  auto& st = self->state;
  std::vector<group_load> loads;
  std::vector<group_entry*> entries;
  const int32_t seqs = std::max(f.req.n, 1);
  for (auto& [name, g] : st.groups) {
    if (g.status.state != group_state::serving) continue;  // cordoned or draining: nothing new
    if (g.status.info.name == f.avoid) continue;
    if (within_room && !has_room(st, g, seqs)) continue;
    const load_report& l = g.status.load;
    const double kv = l.kv_blocks_total > 0 ? double(l.kv_blocks_used) / l.kv_blocks_total : 0;
    loads.push_back({g.key, g.status.outstanding_tokens, l.running, l.waiting, kv});
    entries.push_back(&g);
  }
  const auto pick = st.options.policy->choose(loads, f.req.prompt);
  if (!pick) return false;
  group_entry& g = *entries[*pick];
  f.group = g.status.info.name;
  f.outstanding = int64_t(f.req.prompt.size()) + int64_t(f.req.max_tokens) * std::max(f.req.n, 1);
  g.status.outstanding_tokens += f.outstanding;
  g.status.in_flight += 1;
  g.status.routed += 1;
  f.seqs = seqs;
  g.seqs += seqs;
  if (f.streamed) g.started += seqs;
  // The fair queue's verdict rides on the request's priority: the group's scheduler starts a
  // favoured request before the others waiting there.
  f.req.priority = priority;
  st.held.dispatched(f.req.tenant);
  if (f.sent.empty()) {
    self->send(g.leader, generate_atom::value, f.req, caf::actor_cast<token_sink_actor>(self));
  } else {
    // Resumed: the prompt and what the client already has, and only the rest of its tokens.
    request r = f.req;
    r.prompt.insert(r.prompt.end(), f.sent.begin(), f.sent.end());
    r.resumed = int32_t(f.sent.size());
    r.max_tokens -= int32_t(f.sent.size());
    self->send(g.leader, generate_atom::value, std::move(r), caf::actor_cast<token_sink_actor>(self));
  }
  publish(self);  // a few groups' figures: cheap, and /metrics and routing stats stay current
  return true;
}

void count_held(router_ptr self) {
  if (self->state.held_gauge) self->state.held_gauge->set(double(self->state.held.size()));
  self->state.view->set_held(int64_t(self->state.held.size()));
}

// When to retry a request no group could take: the measured cold start (at least 1 s; 5 s before
// one is measured).
int32_t cold_start_retry_s(const router_state& st) {
  const double s = st.view->cold_start();
  return s > 0 ? int32_t(std::ceil(s)) : 5;
}

// Sends waiting requests, fairest first, while a group has room.
void pump(router_ptr self) {
  auto& st = self->state;
  while (true) {
    // A favoured request (a light tenant beside busy ones) goes first, and even to a full group,
    // with a better priority: its scheduler makes room by preempting a sequence of a worse class.
    auto next = st.held.pop_favoured();
    const bool favoured = next.has_value();
    if (!next) next = st.held.pop();
    if (!next) break;
    auto it = st.flights.find(next->first);
    if (it == st.flights.end()) continue;
    if (!dispatch(self, it->second, !favoured, favoured ? -1 : 0)) {
      st.held.restore(next->first, next->second);
      break;
    }
    st.held.charge(next->second, double(it->second.req.prompt.size()));
  }
  count_held(self);
}

// Puts a new request `f` (in `flights` already) in the fair queue and sends what can go now (it
// too, when it is the fairest and a group has room, or it is favoured). When no group serves: with
// a hold time (scale from zero), it waits for one, at most hold_max such requests; else, or past
// that bound, the failure to answer with.
std::optional<failure> route(router_ptr self, flight& f) {
  auto& st = self->state;
  if (!any_serving(st)) {
    if (st.options.hold_s <= 0)
      return failure{failure_code::unavailable, "no live shard group: the cluster has no worker serving this model yet", {}};
    if (int64_t(st.held.size()) >= st.options.hold_max)
      return failure{failure_code::unavailable,
                     "no shard group serves yet and " + std::to_string(st.held.size()) +
                         " requests already wait for one (--hold-max); retry later",
                     {}, cold_start_retry_s(st)};
    st.held.push(f.req.id, f.req.tenant);
    self->delayed_send(self, std::chrono::milliseconds(int64_t(st.options.hold_s * 1000)), hold_atom::value, f.req.id);
    count_held(self);
    return std::nullopt;
  }
  st.held.push(f.req.id, f.req.tenant);
  pump(self);
  return std::nullopt;
}

void fail_held_without_groups(router_ptr self) {
  auto& st = self->state;
  if (st.held.empty() || any_serving(st)) return;
  if (st.options.hold_s > 0) {  // they wait for the next group, each its hold time from now
    for (int64_t id : st.held.ids())
      self->delayed_send(self, std::chrono::milliseconds(int64_t(st.options.hold_s * 1000)), hold_atom::value, id);
    return;
  }
  while (auto next = st.held.pop()) {
    fail_request(self, next->first, failure_code::unavailable,
                 "no live shard group: the groups serving this model left while the request waited");
    st.flights.erase(next->first);
  }
  count_held(self);
}

// Adds a chunk's tokens to the sample's record for the cache.
void remember(flight& f, const token_chunk& c) {
  if (c.sample < 0 || c.sample >= std::max(f.req.n, 1)) return;
  if (f.stored.empty()) f.stored.resize(size_t(std::max(f.req.n, 1)));
  token_chunk& s = f.stored[size_t(c.sample)];
  s.sample = c.sample;
  s.tokens.insert(s.tokens.end(), c.tokens.begin(), c.tokens.end());
  s.logprobs.insert(s.logprobs.end(), c.logprobs.begin(), c.logprobs.end());
  if (c.finish != finish_reason::none) s.finish = c.finish;
}

// Stores a finished request when every sample ended normally (stop or length).
void store(router_ptr self, flight& f) {
  auto& st = self->state;
  if (!st.options.cache || f.stored.empty()) return;
  for (const auto& s : f.stored)
    if (!completed(s.finish)) return;
  cache_entry e;
  e.samples = std::move(f.stored);
  for (auto& s : e.samples) s.id = 0;
  self->send(st.options.cache, store_atom::value, std::move(f.key), std::move(e));
  if (st.stores) st.stores->inc();
}

// The group ended `f` with an internal error (a broken collective, a device fault) while it was
// still live: route it to another group, resumed after what its client already has. False when it
// cannot be (n > 1, retries spent, nothing left to generate, no other group); the error then
// reaches the client.
bool resume_elsewhere(router_ptr self, flight& f, int64_t id) {
  if (f.req.n > 1 || f.retries >= self->state.options.max_retries || int32_t(f.sent.size()) >= f.req.max_tokens)
    return false;
  const std::string failed = f.group;
  settle(self, f);
  f.group.clear();  // off the failed group's books: a later settle finds nothing
  ++f.retries;
  f.avoid = failed;
  if (!dispatch(self, f, false, f.req.priority)) return false;
  spdlog::warn("router: shard group {} failed request {}: resumed on {} after {} tokens", failed, id, f.group,
               f.sent.size());
  return true;
}

void on_chunks(router_ptr self, std::vector<token_chunk>& chunks) {
  auto& st = self->state;
  for (auto& c : chunks) {
    auto it = st.flights.find(c.id);
    if (it == st.flights.end()) continue;  // cancelled meanwhile
    flight& f = it->second;
    // Only the group the request was routed to writes into its stream.
    auto from = st.groups.find(f.group);
    if (from == st.groups.end() || !from_leader(self, from->second)) {
      log_refusal(self, "a token chunk for a request that was not routed to the sender");
      continue;
    }
    if (!c.tokens.empty()) {
      st.held.charge(f.req.tenant, 2.0 * double(c.tokens.size()));
      if (!f.streamed) from->second.started += f.seqs;
      f.streamed = true;
      if (f.req.n <= 1) f.sent.insert(f.sent.end(), c.tokens.begin(), c.tokens.end());
      const int64_t n = std::min<int64_t>(int64_t(c.tokens.size()), f.outstanding);
      f.outstanding -= n;
      if (auto g = st.groups.find(f.group); g != st.groups.end()) g->second.status.outstanding_tokens -= n;
    }
    if (c.finish == finish_reason::error && c.error.code == failure_code::internal && resume_elsewhere(self, f, c.id)) {
      if (!c.tokens.empty()) {  // the tokens before the failure still reach the client
        c.finish = finish_reason::none;
        c.error = {};
        if (!f.key.bytes.empty()) remember(f, c);
        st.deliver(std::move(c));
      }
      continue;
    }
    if (!f.key.bytes.empty()) remember(f, c);
    const bool done = c.finish != finish_reason::none && --f.unfinished <= 0;
    const int64_t id = c.id;
    const bool listening = st.deliver(std::move(c));
    if (done) {
      settle(self, f);
      if (!f.key.bytes.empty()) store(self, f);
      st.flights.erase(it);
    } else if (!listening) {  // its client is gone: stop spending the group's time on it
      if (auto g = st.groups.find(f.group); g != st.groups.end()) self->send(g->second.leader, abort_atom::value, id);
      settle(self, f);
      st.flights.erase(it);
    }
  }
  pump(self);  // what finished made room
  st.view->set_room(room_of(st));  // the room only: this runs every step of every group
}

// At most this many registry subscribers (the autoscaler, admin consoles): each gets every event.
constexpr size_t max_subscribers = 64;

// The registry answers the roles of the router's own node only (the autoscaler, the admin console):
// a cluster peer (a worker, or anyone who reached the cluster port) may not list, follow or steer
// the shard groups. None when the sender may; else the error naming the message.
std::optional<caf::error> refuse_remote(router_ptr self, const char* what) {
  if (from_this_node(self)) return std::nullopt;
  log_refusal(self, std::string("registry ") + what);
  return caf::make_error(caf::sec::runtime_error,
                         std::string("registry ") + what + ": refused, it answers roles of the router's own node only");
}

// The group named `name`, or an error naming it.
caf::expected<group_entry*> find_group(router_state& st, const std::string& name) {
  auto g = st.groups.find(name);
  if (g == st.groups.end()) return caf::make_error(caf::sec::runtime_error, "no shard group named '" + name + "'");
  return &g->second;
}

// Moves a group to `to` (draining is final: it cannot be cordoned or uncordoned back).
caf::result<group_status> set_state(router_ptr self, const char* verb, const std::string& name, group_state to) {
  if (auto refused = refuse_remote(self, verb)) return std::move(*refused);
  auto g = find_group(self->state, name);
  if (!g) return std::move(g.error());
  group_entry& e = **g;
  if (e.status.state == group_state::draining && to != group_state::draining)
    return caf::make_error(caf::sec::runtime_error, "shard group '" + name + "' is draining; it cannot be " +
                                                        (to == group_state::serving ? "uncordoned" : "cordoned"));
  if (e.status.state != to) {
    e.status.state = to;
    publish(self);
    notify(self, registry_change::state, e.status);
  }
  stop_if_drained(self, e);
  pump(self);
  fail_held_without_groups(self);
  return e.status;
}

// The cache's answer for a request: a hit is replayed to the front end (one chunk per sample, each
// with all its tokens) and never reaches a group; a miss is routed.
void on_lookup(router_ptr self, int64_t id, cache_lookup& r) {
  auto& st = self->state;
  auto it = st.flights.find(id);
  if (it == st.flights.end()) return;  // cancelled while the cache was asked
  flight& f = it->second;
  // Anyone who can write to a shared Redis can plant an entry: replay only what this request can be.
  if (r.hit && r.entry.samples.size() != size_t(std::max(f.req.n, 1))) r.hit = false;
  for (size_t i = 0; r.hit && i < r.entry.samples.size(); ++i)
    if (r.entry.samples[i].sample != int32_t(i) || !completed(r.entry.samples[i].finish)) r.hit = false;
  if (r.hit) {
    if (st.hit_latency)
      st.hit_latency->observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - f.looked_up).count());
    for (auto& c : r.entry.samples) {
      c.id = id;
      st.deliver(std::move(c));
    }
    st.flights.erase(it);
    return;
  }
  if (auto refused = route(self, f)) {
    st.deliver(failed_chunk(id, std::move(*refused)));
    st.flights.erase(it);
  }
}

void on_down(router_ptr self, const caf::actor_addr& who, const caf::error& reason) {
  auto& st = self->state;
  std::erase_if(st.rendezvous, [&who](const auto& e) { return e.second.address() == who; });
  std::erase_if(st.subscribers, [&who](const auto& s) { return s.address() == who; });
  auto g = std::find_if(st.groups.begin(), st.groups.end(),
                        [&who](const auto& e) { return e.second.leader.address() == who; });
  if (g == st.groups.end()) return;
  const std::string name = g->first;
  const bool drained = g->second.stop_sent && reason == caf::exit_reason::normal;
  const group_status last = g->second.status;
  st.groups.erase(g);
  notify(self, registry_change::left, last, drained ? "drained" : caf::to_string(reason));
  std::vector<int64_t> ended;
  int resumed = 0, lost = 0;
  for (auto& [id, f] : st.flights) {
    if (f.group != name) continue;
    f.outstanding = 0;
    f.seqs = 0;
    st.held.settled(f.req.tenant);  // off the dead group's books (its entry is gone)
    // A request that had streamed is resumed after what its client has (n = 1 only: the samples of
    // n > 1 share one prompt's blocks and cannot be continued one by one).
    const bool resumable = !f.streamed || f.req.n <= 1;
    if (resumable && f.streamed && int32_t(f.sent.size()) >= f.req.max_tokens) {
      // Every token was sent; only the finish was lost with the group.
      token_chunk last;
      last.id = id;
      last.finish = finish_reason::length;
      if (!f.key.bytes.empty()) remember(f, last);
      st.deliver(std::move(last));
      if (!f.key.bytes.empty()) store(self, f);
      ended.push_back(id);
      continue;
    }
    if (resumable && f.retries < st.options.max_retries) {
      ++f.retries;
      if (dispatch(self, f, false, f.req.priority)) {
        resumed += f.streamed ? 1 : 0;
        continue;
      }
      ++lost;
      fail_request(self, id, failure_code::unavailable, "shard group " + name + " failed (" + caf::to_string(reason) +
                                      ") and no other live shard group can take the request");
    } else if (!resumable) {
      ++lost;
      fail_request(self, id, failure_code::internal, "shard group " + name + " failed (" + caf::to_string(reason) +
                                      ") after the request had started streaming; a request with n > 1 cannot be resumed");
    } else {
      ++lost;
      fail_request(self, id, failure_code::unavailable, "shard group " + name + " failed and the request was already retried " +
                                      std::to_string(f.retries) + " times");
    }
    ended.push_back(id);
  }
  for (int64_t id : ended) st.flights.erase(id);
  if (resumed > 0 || lost > 0)
    spdlog::warn("router: shard group {} left ({}): {} streaming requests resumed on other groups, {} ended with an error",
                 name, drained ? "drained" : caf::to_string(reason), resumed, lost);
  fail_held_without_groups(self);
  pump(self);
  publish(self);
}

}  // namespace

router_actor spawn_router(caf::actor_system& system, router_options options, chunk_delivery deliver,
                          std::shared_ptr<cluster_view> view) {
  auto fn = [](router_ptr self, router_options opts, chunk_delivery deliver_chunk,
               std::shared_ptr<cluster_view> v) -> router_actor::behavior_type {
    self->state.options = std::move(opts);
    self->state.deliver = std::move(deliver_chunk);
    self->state.view = std::move(v);
    self->state.view->set_holding(self->state.options.hold_s > 0);
    if (auto* m = self->state.options.metrics) {
      self->state.hit_latency = &m->histogram("troupe_cache_hit_latency_seconds",
                                              "Router time from the cache lookup to replaying a hit.",
                                              exponential_buckets(1e-5, 2, 16));
      self->state.stores = &m->counter("troupe_cache_stores_total", "Finished requests sent to the cache.");
      self->state.held_gauge = &m->gauge("troupe_router_waiting_requests",
                                         "Requests waiting at the router for room in a shard group (fair queue).");
    }
    self->state.held = fair_queue(self->state.options.tenant_weights);
    self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm.source, dm.reason); });
    return {
        [self](register_atom, group_info& info, gpu_leader_actor& leader) -> caf::result<bool> {
          auto& st = self->state;
          // The refusals name what is wrong but never the router's model path or revision: the
          // sender may be anyone who reached the cluster port. The log has the details.
          const auto refuse = [self](const std::string& why, const std::string& detail) {
            log_refusal(self, "a shard group's registration: " + why + (detail.empty() ? "" : " (" + detail + ")"));
            return caf::make_error(caf::sec::runtime_error, why);
          };
          if (info.revision != st.options.revision)
            return refuse("shard group '" + info.name + "' serves another model revision than this router",
                          "it serves '" + info.revision + "', the router '" + st.options.revision + "'");
          if (!leader) return refuse("shard group '" + info.name + "' sent no leader", {});
          if (info.name.empty()) return refuse("a shard group needs a name", {});
          const auto& sender = self->current_sender();
          if (!sender || sender->node() != leader.node())
            return refuse("shard group '" + info.name + "': a group registers its own leader (one on the sender's node)", {});
          if (st.groups.count(info.name))
            return refuse("a shard group named '" + info.name + "' is already registered", {});
          self->monitor(leader);
          group_entry e;
          e.key = XXH3_64bits(info.name.data(), info.name.size());
          e.status.load.group = info.name;
          e.leader = std::move(leader);
          e.status.info = std::move(info);
          const std::string name = e.status.info.name;
          auto& entry = st.groups[name] = std::move(e);
          publish(self);
          notify(self, registry_change::joined, entry.status);
          pump(self);
          return true;
        },
        [self](load_atom, load_report& r) {
          auto g = self->state.groups.find(r.group);
          if (g == self->state.groups.end()) return;
          if (!from_leader(self, g->second)) return log_refusal(self, "a load report for another group than the sender's");
          g->second.status.load = std::move(r);
          publish(self);
          notify(self, registry_change::load, g->second.status);
        },
        [self](tokens_atom, std::vector<token_chunk>& chunks) { on_chunks(self, chunks); },
        [self](leave_atom, const std::string& name) {
          auto g = self->state.groups.find(name);
          if (g == self->state.groups.end() || !from_leader(self, g->second))
            return log_refusal(self, "a leave for another group than the sender's");
          if (g->second.status.state != group_state::draining) {
            g->second.status.state = group_state::draining;
            publish(self);
            notify(self, registry_change::state, g->second.status);
          }
          stop_if_drained(self, g->second);
        },
        [self](submit_atom, request& req, cache_key& key) {
          auto& st = self->state;
          if (!from_this_node(self)) return log_refusal(self, "a request submitted from outside this node");
          if (st.flights.count(req.id)) {  // ids are random 63-bit numbers: a clash is a bug or a replay
            return log_refusal(self, "a request whose id is in flight already");
          }
          flight f;
          f.unfinished = std::max(req.n, 1);
          f.req = std::move(req);
          const int64_t id = f.req.id;
          if (f.req.deadline_ms > 0)  // a request that ends in time is gone from `flights` by then
            self->delayed_send(self, std::chrono::milliseconds(f.req.deadline_ms), deadline_atom::value, id);
          if (st.options.cache && !key.bytes.empty()) {
            f.key = std::move(key);
            f.looked_up = std::chrono::steady_clock::now();
            auto& entry = st.flights.emplace(id, std::move(f)).first->second;
            self->request(st.options.cache, st.options.cache_timeout, lookup_atom::value, entry.key)
                .then([self, id](cache_lookup& r) { on_lookup(self, id, r); },
                      // An unreachable or slow cache is a miss, never an error to the client.
                      [self, id](caf::error&) {
                        cache_lookup miss;
                        on_lookup(self, id, miss);
                      });
            return;
          }
          auto& entry = st.flights.emplace(id, std::move(f)).first->second;
          if (auto refused = route(self, entry)) {
            st.deliver(failed_chunk(id, std::move(*refused)));
            st.flights.erase(id);
          }
        },
        [self](cancel_atom, int64_t id) {
          auto& st = self->state;
          if (!from_this_node(self)) return log_refusal(self, "a cancel from outside this node");
          auto it = st.flights.find(id);
          if (it == st.flights.end()) return;
          if (st.held.remove(id)) count_held(self);
          if (auto g = st.groups.find(it->second.group); g != st.groups.end())
            self->send(g->second.leader, abort_atom::value, id);
          settle(self, it->second);
          st.flights.erase(it);
          pump(self);
        },
        [self](deadline_atom, int64_t id) {
          auto& st = self->state;
          if (caf::actor_cast<caf::actor_addr>(self->current_sender()) != self->address())
            return log_refusal(self, "a deadline sent by another actor than the router");
          auto it = st.flights.find(id);
          if (it == st.flights.end()) return;  // it ended in time
          flight& f = it->second;
          if (st.held.remove(id)) count_held(self);
          if (auto g = st.groups.find(f.group); g != st.groups.end())
            self->send(g->second.leader, abort_atom::value, id);
          spdlog::warn("router: request {} passed its deadline of {} ms {} and was ended", id, f.req.deadline_ms,
                       f.group.empty() ? "waiting for a group" : "on shard group " + f.group);
          settle(self, f);
          fail_request(self, id, failure_code::timeout,
                       fmt::format("the request did not finish within its deadline of {:g} s (--request-timeout)",
                                   double(f.req.deadline_ms) / 1000.0));
          st.flights.erase(it);
          pump(self);
        },
        [self](hold_atom, int64_t id) {
          auto& st = self->state;
          if (caf::actor_cast<caf::actor_addr>(self->current_sender()) != self->address())
            return log_refusal(self, "a hold timeout sent by another actor than the router");
          auto it = st.flights.find(id);
          // Ended, dispatched, or waiting only for room now that a group serves: not held for a group.
          if (it == st.flights.end() || !it->second.group.empty() || any_serving(st)) return;
          if (!st.held.remove(id)) return;
          count_held(self);
          spdlog::warn("router: request {} waited {:g} s and no shard group started; refused", id, st.options.hold_s);
          st.deliver(failed_chunk(id, failure{failure_code::unavailable,
                                              fmt::format("no shard group started within the hold time of {:g} s "
                                                          "(--hold-timeout); retry later",
                                                          st.options.hold_s),
                                              {}, cold_start_retry_s(st)}));
          st.flights.erase(it);
        },
        [self](list_atom) -> caf::result<std::vector<group_status>> {
          if (auto refused = refuse_remote(self, "list")) return std::move(*refused);
          return statuses(self->state);
        },
        [self](subscribe_atom, registry_subscriber_actor& who) -> caf::result<std::vector<group_status>> {
          if (auto refused = refuse_remote(self, "subscribe")) return std::move(*refused);
          if (!who) return caf::make_error(caf::sec::runtime_error, "subscribe: no subscriber given");
          auto& subs = self->state.subscribers;
          if (std::find(subs.begin(), subs.end(), who) == subs.end()) {
            if (subs.size() >= max_subscribers)
              return caf::make_error(caf::sec::runtime_error, "subscribe: the registry already has " +
                                                                  std::to_string(max_subscribers) + " subscribers");
            self->monitor(who);
            subs.push_back(std::move(who));
          }
          return statuses(self->state);
        },
        [self](unsubscribe_atom, const registry_subscriber_actor& who) {
          if (refuse_remote(self, "unsubscribe")) return;
          auto& subs = self->state.subscribers;
          subs.erase(std::remove(subs.begin(), subs.end(), who), subs.end());
        },
        [self](cordon_atom, const std::string& name) { return set_state(self, "cordon", name, group_state::cordoned); },
        [self](uncordon_atom, const std::string& name) { return set_state(self, "uncordon", name, group_state::serving); },
        [self](drain_atom, const std::string& name) { return set_state(self, "drain", name, group_state::draining); },
        [self](rendezvous_atom, std::string& group, rendezvous_actor& store) {
          if (!store) return;
          auto [it, added] = self->state.rendezvous.emplace(std::move(group), store);
          if (!added && it->second != store)
            return log_refusal(self, "a second rendezvous for shard group '" + it->first + "'");
          self->monitor(store);
        },
        [self](rendezvous_atom, const std::string& group) -> caf::result<rendezvous_actor> {
          auto it = self->state.rendezvous.find(group);
          if (it == self->state.rendezvous.end())
            return caf::make_error(caf::sec::runtime_error, "no shard group '" + group + "' is forming at this router");
          return it->second;
        },
    };
  };
  return system.spawn(fn, std::move(options), std::move(deliver), std::move(view));
}

}  // namespace troupe::router
