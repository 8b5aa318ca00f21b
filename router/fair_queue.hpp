// The requests waiting at the router for room in a shard group, served in the order of virtual
// token counters (VTC: Sheng et al., "Fairness in Serving Large Language Models", OSDI'24). Each
// tenant's counter grows by the service it gets, (input tokens + 2 x output tokens) / its weight,
// and the next request is the oldest one of the waiting tenant with the smallest counter. A tenant
// that starts waiting is lifted to the smallest counter among the waiting ones (or, when none
// waits, to the counter of the last tenant that stopped waiting), so time spent idle banks no
// credit against the others.
//
// The queue also says which requests to favour: one whose tenant has the least service among the
// active tenants (waiting or running), when another is active, and nothing else waiting of its own
// (a light tenant beside a busy one, not one of two busy ones: those take turns in the queue and
// never preempt each other). The router sends a favoured request even to a full group, with a
// better priority, and the group's scheduler makes room for it by preempting a sequence of the
// others (recomputed later).
//
// Bounds: it holds what the front ends admitted (their --max-queued-requests bound it); one counter
// per tenant, and tenants are API key labels (bounded by the key file).
// Threading: the router actor's only.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>

namespace troupe::router {

class fair_queue {
 public:
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
  // by tokens / weight.
  void charge(const std::string& tenant, double tokens);
  // A request of `tenant` went to a group / left its group (finished, failed, cancelled).
  void dispatched(const std::string& tenant);
  void settled(const std::string& tenant);
  // True when `tenant` has nothing waiting, the least service among the active tenants, and
  // another tenant is active.
  [[nodiscard]] bool favoured(const std::string& tenant) const;

  [[nodiscard]] size_t size() const { return where_.size(); }
  [[nodiscard]] bool empty() const { return where_.empty(); }
  [[nodiscard]] double counter(const std::string& tenant) const;

 private:
  struct line {
    double weight = 1;
    double counter = 0;
    std::deque<std::pair<int64_t, uint64_t>> waiting;  // request id, arrival number
    int64_t running = 0;                                // dispatched and not settled
  };
  line& line_of(const std::string& tenant);
  [[nodiscard]] std::optional<double> least_waiting_counter() const;

  std::map<std::string, double> weights_;
  std::map<std::string, line> lines_;
  std::unordered_map<int64_t, std::string> where_;  // waiting id -> tenant
  double floor_ = 0;        // the counter of the last tenant that stopped waiting
  uint64_t arrivals_ = 0;   // ties between equal counters go to the older head
};

}  // namespace troupe::router
