// Admission control at the front door, before a request's template and tokenizer run: a bound on
// the requests queued (admitted, no first token yet) and on their prompt tokens, shared fairly
// among tenants (API keys), and each key's optional token-per-minute quota.
//
// - The queue bound is the smaller of --max-queued-requests and the room the groups have now (the
//   queued requests they hold themselves, from the router's cluster_view) plus what starts within
//   --max-queue-wait at the measured start rate (queued requests getting their first token per
//   second: the best 1 s window, decaying by a fifth a window), but never below
//   min_queued_requests; until a rate is measured, --max-queued-requests alone. So under overload
//   a request either starts within about that wait or is refused at once, instead of waiting
//   behind hundreds; an idle cluster still takes a burst as large as its room.

// - Full queue: a tenant below its weighted share of the bound (bound x its weight / the weights of
//   the tenants queued now, its own included) is still let in, up to twice the bound in all (a
//   tenant with nothing queued: up to --max-queued-requests, since it waits for no backlog); a
//   tenant at or above its share is refused as overloaded (HTTP 429) with a Retry-After estimated
//   from the measured rate at which queued requests get their first token. So a key that floods
//   the node fills the queue only until another key needs its place.
// - Quota: a token bucket of tokens_per_minute, refilled continuously; the prompt is taken when it
//   is known, the generated tokens when the request ends. Empty: refused (429) with the time until
//   the prompt fits again; a prompt larger than the whole quota is an invalid request.
// - Draining (SIGTERM): every new request is refused as unavailable (503); /health says "draining".
//
// Threading: the kj thread of the node's front ends only (HTTP and RPC share one admission).
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <variant>

#include "common/failure.hpp"
#include "frontend/core/api_keys.hpp"

namespace troupe::frontend {

struct admission_limits {
  int64_t max_queued_requests = 256;       // --max-queued-requests
  int64_t max_queued_tokens = 1 << 20;     // --max-queued-tokens (prompt tokens of queued requests)
  double max_queue_wait_s = 0.1;           // --max-queue-wait (0: the count bound alone)
  int64_t min_queued_requests = 2;         // the bound while the start rate is unknown or low
};


class admission {
  struct state;
  struct tenant;

 public:
  explicit admission(admission_limits limits = {}) : state_(std::make_shared<state>(limits)) {}

  // One admitted request's place in the queue (freed when it starts, its first token, or ends) and
  // its tenant's quota account.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& other) noexcept;
    ticket& operator=(ticket&& other) noexcept;
    ~ticket() { release(false); }
    // Counts the request's prompt tokens (once it is tokenized): overloaded when they do not fit the
    // queue's bound or the tenant's quota now, invalid_request when they exceed the whole quota.
    [[nodiscard]] std::optional<failure> add_tokens(int64_t tokens);
    // The request has its first token: it leaves the queue, and the drain rate counts it.
    void started() { release(true); }
    // The request generated `tokens` in all: they are taken from the tenant's quota.
    void charge_generated(int64_t tokens);

   private:
    friend class admission;
    void release(bool started);
    std::shared_ptr<state> state_;
    tenant* tenant_ = nullptr;  // in state_->tenants (node-based: stable)
    int64_t tokens_ = 0;
    bool queued_ = false;
  };

  // A place for a new request that came with `key` (null: the node has no keys, one tenant), or why
  // there is none (draining: unavailable; full or out
  // of quota: overloaded).
  // `room`: queued requests the groups hold themselves now (router::cluster_view::room).
  [[nodiscard]] std::variant<ticket, failure> admit(const key_entry* key, int64_t room = 0);

  // From now on new requests are refused; clients may retry (elsewhere) after `retry_after_s`.
  void start_draining(int32_t retry_after_s);
  [[nodiscard]] bool draining() const { return state_->draining; }
  // The queue bound now (see the top of this file).
  [[nodiscard]] int64_t queue_bound(int64_t room = 0) const { return state_->queue_bound(room); }

 private:
  struct tenant {
    double weight = 1;
    int64_t queued = 0;
    int64_t tokens = 0;  // prompt tokens of its queued requests
    int64_t per_minute = 0;
    double level = 0;    // tokens left in its quota bucket (may go below 0 after a long output)
    std::chrono::steady_clock::time_point refilled;
    void refill();
    [[nodiscard]] int32_t seconds_until(double tokens) const;  // until `level` reaches `tokens`
  };
  struct state {
    explicit state(admission_limits l) : limits(l) {}
    admission_limits limits;
    bool draining = false;
    int32_t drain_retry_after_s = 0;
    int64_t queued = 0;
    int64_t tokens = 0;
    // One entry per key label seen: bounded by the key file (one entry when there are no keys).
    std::map<std::string, tenant> tenants;
    // The rate at which queued requests start, per second, measured over 1 s windows: an
    // exponentially weighted average (Retry-After) and the best recent window, decaying by a fifth
    // a window (the capacity the wait bound uses).
    double start_rate = 0;
    double peak_rate = 0;
    int64_t starts_in_window = 0;
    std::chrono::steady_clock::time_point window_begin = std::chrono::steady_clock::now();
    void count_start();
    [[nodiscard]] int64_t queue_bound(int64_t room) const;
    // True when `t`, asking for `more` of a bound at `used` of `bound`, is refused: the bound is
    // full and `t` holds its weighted share already (`mine` of `used`), or twice the bound is, or
    // (`t` holding nothing) `cap` is.
    [[nodiscard]] bool over_share(const tenant& t, int64_t used, int64_t more, int64_t bound, int64_t cap,
                                  int64_t mine) const;
    [[nodiscard]] int32_t retry_after_s() const;  // ceil(queued / rate), in [1, 60]
    [[nodiscard]] failure overloaded(const std::string& what) const;
  };
  std::shared_ptr<state> state_;
};

}  // namespace troupe::frontend
