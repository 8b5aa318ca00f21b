// The requests waiting at the router for room in a shard group, served in the order of virtual
// token counters (VTC: Sheng et al., "Fairness in Serving Large Language Models", OSDI'24). Each
// tenant's counter grows by the service it gets, (input tokens + 2 x output tokens) / its weight,
// and the next request is the oldest one of the waiting tenant with the smallest counter (on a tie,
// the tenant with fewer requests waiting and running, then the older request). A tenant
// that starts waiting is lifted to the smallest counter among the waiting ones (or, when none
// waits, to the counter of the last tenant that stopped waiting), so time spent idle banks no
// credit against the others.
//
// The queue also says which requests to favour: those of a tenant whose recent service (the same
// tokens as the counters, decaying with a 2 s time constant) is below 0.8 of its weighted share of
// the recent service of the active tenants (waiting or running), when another is active: a light
// tenant beside a busy one, not one of two busy ones (those take turns in the queue and never
// preempt each other). The router sends a favoured request at once, even to a full group, with a
// better priority, and the group's scheduler makes room for it by preempting a sequence of the
// others (recomputed later). Why recent service and not the counters: the counters let a tenant
// run ahead by a request's tokens (charged at dispatch) before the others catch up, so a light
// tenant's next request, a few steps later, would wait for a free place behind the flood; its
// share over seconds says it is far below what it may have.
//
// Bounds: it holds what the front ends admitted (their --max-queued-requests bound it); one counter
// per tenant, and tenants are API key labels (bounded by the key file).
// Threading: the router actor's only.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace troupe::router {

class fair_queue {
 public:
  using clock = std::chrono::steady_clock;

  // Tenants not in `weights` weigh 1.
  explicit fair_queue(std::map<std::string, double> weights = {});

  // A new request of `tenant` waits (at the back of its tenant's line).
  void push(int64_t id, const std::string& tenant);
  // The request to serve next and its tenant, taken off the queue; nullopt when empty.
  [[nodiscard]] std::optional<std::pair<int64_t, std::string>> pop();
  // Puts a request just popped back at the head of its tenant's line (no group had room after all).
  void restore(int64_t id, const std::string& tenant);
  // Takes a waiting request off the queue (its client left); false when it was not waiting.
  bool remove(int64_t id);
  // `tenant` was served `tokens` (input at dispatch, 2 x output as it streams): its counter grows
  // by tokens / weight, and its recent service by tokens.
  void charge(const std::string& tenant, double tokens, clock::time_point now = clock::now());
  // A request of `tenant` went to a group / left its group (finished, failed, cancelled).
  void dispatched(const std::string& tenant);
  void settled(const std::string& tenant);
  // True when `tenant`'s recent service is below 0.8 of its weighted share among the active
  // tenants, another of which is active.
  [[nodiscard]] bool favoured(const std::string& tenant, clock::time_point now = clock::now()) const;
  // The oldest waiting request of a favoured tenant, taken off the queue; nullopt when none.
  [[nodiscard]] std::optional<std::pair<int64_t, std::string>> pop_favoured(clock::time_point now = clock::now());

  [[nodiscard]] size_t size() const { return where_.size(); }
  // The waiting requests' ids, in no particular order.
  [[nodiscard]] std::vector<int64_t> ids() const {
    std::vector<int64_t> out;
    for (const auto& [id, tenant] : where_) out.push_back(id);
    return out;
  }
  [[nodiscard]] bool empty() const { return where_.empty(); }
  [[nodiscard]] double counter(const std::string& tenant) const;

 private:
  struct line {
    double weight = 1;
    double counter = 0;
    std::deque<std::pair<int64_t, uint64_t>> waiting;  // request id, arrival number
    int64_t running = 0;                                // dispatched and not settled
    double recent = 0;                                  // service, decayed to `recent_at`
    clock::time_point recent_at;
    [[nodiscard]] bool active() const { return !waiting.empty() || running > 0; }
    [[nodiscard]] double recent_by(clock::time_point now) const;
  };
  // The active tenants' count, weights and recent service.
  struct active_totals {
    int tenants = 0;
    double weights = 0, service = 0;
  };
  [[nodiscard]] active_totals totals(clock::time_point now) const;
  // favoured() for the tenant of line `self` (null: a tenant without a line yet) of `my_weight`,
  // given the totals.
  [[nodiscard]] bool favoured_among(const line* self, double my_weight, const active_totals& all,
                                    clock::time_point now) const;
  // Takes the front of `l`'s line off the queue.
  std::pair<int64_t, std::string> take_front(line& l, const std::string& tenant);
  line& line_of(const std::string& tenant);
  [[nodiscard]] std::optional<double> least_waiting_counter() const;

  std::map<std::string, double> weights_;
  std::map<std::string, line> lines_;
  std::unordered_map<int64_t, std::string> where_;  // waiting id -> tenant
  double floor_ = 0;        // the counter of the last tenant that stopped waiting
  uint64_t arrivals_ = 0;   // orders the heads of tenants tied on counter and in flight
};

}  // namespace troupe::router
