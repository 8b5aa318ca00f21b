// Admission control at the front door, before a request's template and tokenizer run: a bound on
// the requests queued (admitted, no first token yet) and on their prompt tokens; beyond either a
// new request is refused as overloaded (HTTP 429) with a Retry-After estimated from the measured
// rate at which queued requests get their first token. While the node drains (SIGTERM) every new
// request is refused as unavailable (503) and /health says "draining".
//
// Threading: the kj thread of the node's front ends only (HTTP and RPC share one admission).
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <variant>

#include "common/failure.hpp"

namespace troupe::frontend {

struct admission_limits {
  int64_t max_queued_requests = 256;       // --max-queued-requests
  int64_t max_queued_tokens = 1 << 20;     // --max-queued-tokens (prompt tokens of queued requests)
};

class admission {
  struct state;

 public:
  explicit admission(admission_limits limits = {}) : state_(std::make_shared<state>(limits)) {}

  // One admitted request's place in the queue: freed when it starts (its first token) or ends.
  class ticket {
   public:
    ticket() = default;
    ticket(ticket&& other) noexcept : state_(std::move(other.state_)), tokens_(other.tokens_) { other.tokens_ = 0; }
    ticket& operator=(ticket&& other) noexcept;
    ~ticket() { release(false); }
    // Counts the request's prompt tokens (once it is tokenized); overloaded when they do not fit.
    [[nodiscard]] std::optional<failure> add_tokens(int64_t tokens);
    // The request has its first token: it leaves the queue, and the drain rate counts it.
    void started() { release(true); }

   private:
    friend class admission;
    void release(bool started);
    std::shared_ptr<state> state_;
    int64_t tokens_ = 0;
  };

  // A place for a new request, or why there is none (draining: unavailable; full: overloaded).
  [[nodiscard]] std::variant<ticket, failure> admit();

  // From now on new requests are refused; clients may retry (elsewhere) after `retry_after_s`.
  void start_draining(int32_t retry_after_s);
  [[nodiscard]] bool draining() const { return state_->draining; }

 private:
  struct state {
    explicit state(admission_limits l) : limits(l) {}
    admission_limits limits;
    bool draining = false;
    int32_t drain_retry_after_s = 0;
    int64_t queued = 0;
    int64_t tokens = 0;
    // The rate at which queued requests start, per second: an exponentially weighted average of
    // the starts over ~5 s windows.
    double start_rate = 0;
    int64_t starts_in_window = 0;
    std::chrono::steady_clock::time_point window_begin = std::chrono::steady_clock::now();
    void count_start();
    [[nodiscard]] int32_t retry_after_s() const;  // ceil(queued / rate), in [1, 60]
    [[nodiscard]] failure overloaded(const char* what) const;
  };
  std::shared_ptr<state> state_;
};

}  // namespace troupe::frontend
