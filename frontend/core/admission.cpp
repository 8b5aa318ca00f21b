// Admission control (see admission.hpp).
#include "frontend/core/admission.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace troupe::frontend {

namespace {
constexpr double window_s = 1.0;
constexpr double average_weight = 0.2;  // of the newest window: ~5 windows' memory
}  // namespace

admission::ticket::ticket(ticket&& other) noexcept
    : state_(std::move(other.state_)), tenant_(other.tenant_), tokens_(other.tokens_), queued_(other.queued_) {
  other.tenant_ = nullptr;
  other.tokens_ = 0;
  other.queued_ = false;
}

admission::ticket& admission::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release(false);
    state_ = std::move(other.state_);
    tenant_ = other.tenant_;
    tokens_ = other.tokens_;
    queued_ = other.queued_;
    other.tenant_ = nullptr;
    other.tokens_ = 0;
    other.queued_ = false;
  }
  return *this;
}

std::optional<failure> admission::ticket::add_tokens(int64_t tokens) {
  if (!state_ || !tenant_) return std::nullopt;
  auto& s = *state_;
  auto& t = *tenant_;
  if (s.over_share(t, s.tokens, tokens, s.limits.max_queued_tokens, s.limits.max_queued_tokens, t.tokens))
    return s.overloaded("the queued requests' prompts hold " + std::to_string(s.tokens) + " tokens (limit " +
                        std::to_string(s.limits.max_queued_tokens) + ")");
  if (t.per_minute > 0) {
    if (tokens > t.per_minute)
      return failure{failure_code::invalid_request,
                     "the prompt's " + std::to_string(tokens) + " tokens exceed this API key's quota of " +
                         std::to_string(t.per_minute) + " tokens per minute",
                     {}};
    t.refill();
    if (t.level < double(tokens))
      return failure{failure_code::overloaded,
                     "this API key's quota of " + std::to_string(t.per_minute) +
                         " tokens per minute is used up; retry later",
                     {}, t.seconds_until(double(tokens))};
    t.level -= double(tokens);
  }
  s.tokens += tokens;
  t.tokens += tokens;
  tokens_ += tokens;
  return std::nullopt;
}

void admission::ticket::charge_generated(int64_t tokens) {
  if (!state_ || !tenant_ || tenant_->per_minute <= 0 || tokens <= 0) return;
  tenant_->refill();
  tenant_->level -= double(tokens);
}

void admission::ticket::release(bool started) {
  if (!state_ || !queued_) return;
  auto& s = *state_;
  --s.queued;
  s.tokens -= tokens_;
  if (tenant_) {
    --tenant_->queued;
    tenant_->tokens -= tokens_;
  }
  tokens_ = 0;
  queued_ = false;
  if (started) s.count_start();
}

std::variant<admission::ticket, failure> admission::admit(const key_entry* key, int64_t room) {
  auto& s = *state_;
  if (s.draining)
    return failure{failure_code::unavailable, "the server is shutting down and takes no new requests", {},
                   s.drain_retry_after_s};
  static const key_entry no_key;  // the one tenant of a node without keys: label "", weight 1
  const key_entry& who = key != nullptr ? *key : no_key;
  auto [it, added] = s.tenants.try_emplace(who.label);
  tenant& t = it->second;
  if (added || t.per_minute != who.tokens_per_minute) {
    t.per_minute = who.tokens_per_minute;
    t.level = double(who.tokens_per_minute);
    t.refilled = std::chrono::steady_clock::now();
  }
  t.weight = who.weight > 0 ? who.weight : 1;
  const int64_t bound = s.queue_bound(room);
  if (s.over_share(t, s.queued, 1, bound, s.limits.max_queued_requests, t.queued))
    return s.overloaded(std::to_string(s.queued) + " requests are queued (limit " + std::to_string(bound) + ")");
  if (t.per_minute > 0) {
    t.refill();
    if (t.level <= 0)
      return failure{failure_code::overloaded,
                     "this API key's quota of " + std::to_string(t.per_minute) +
                         " tokens per minute is used up; retry later",
                     {}, t.seconds_until(1)};
  }
  ++s.queued;
  ++t.queued;
  ticket k;
  k.state_ = state_;
  k.tenant_ = &t;
  k.queued_ = true;
  return k;
}

void admission::start_draining(int32_t retry_after_s) {
  state_->draining = true;
  state_->drain_retry_after_s = retry_after_s;
}

void admission::tenant::refill() {
  const auto now = std::chrono::steady_clock::now();
  const double s = std::chrono::duration<double>(now - refilled).count();
  level = std::min(double(per_minute), level + s * double(per_minute) / 60.0);
  refilled = now;
}

int32_t admission::tenant::seconds_until(double tokens) const {
  const double rate = double(per_minute) / 60.0;
  return int32_t(std::clamp(std::ceil((tokens - level) / rate), 1.0, 60.0));
}

bool admission::state::over_share(const tenant& t, int64_t used, int64_t more, int64_t bound, int64_t cap,
                                  int64_t mine) const {
  if (used + more <= bound || used == 0) return false;
  // A tenant with nothing queued waits for no one's backlog (the router favours it), so the queue's
  // length does not make its wait long: it is let in up to the absolute cap too.
  if (mine == 0 && used + more <= cap) return false;
  if (used + more > 2 * bound) return true;
  double weights = t.queued > 0 ? 0 : t.weight;  // its own, when it has nothing queued yet
  for (const auto& [label, other] : tenants)
    if (other.queued > 0) weights += other.weight;
  return double(mine + more) > double(bound) * t.weight / weights;
}

void admission::state::count_start() {
  ++starts_in_window;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - window_begin).count();
  if (elapsed < window_s) return;
  const double rate = double(starts_in_window) / elapsed;
  start_rate = start_rate > 0 ? (1 - average_weight) * start_rate + average_weight * rate : rate;
  peak_rate = std::max(rate, 0.8 * peak_rate);
  starts_in_window = 0;
  window_begin = now;
}

int64_t admission::state::queue_bound(int64_t room) const {
  // Until a start rate is measured (a fresh node), the count bound alone: a first burst is let in.
  if (limits.max_queue_wait_s <= 0 || peak_rate <= 0) return limits.max_queued_requests;
  const auto by_wait = std::max<int64_t>(room, 0) + int64_t(std::ceil(peak_rate * limits.max_queue_wait_s));
  return std::min(limits.max_queued_requests, std::max(limits.min_queued_requests, by_wait));
}

int32_t admission::state::retry_after_s() const {
  // Before a whole window has been measured, the starts so far.
  double rate = start_rate;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_begin).count();
  if (rate <= 0 && elapsed > 0.5 && starts_in_window > 0) rate = double(starts_in_window) / elapsed;
  if (rate <= 0) return 1;
  return int32_t(std::clamp(std::ceil(double(queued) / rate), 1.0, 60.0));
}

failure admission::state::overloaded(const std::string& what) const {
  return failure{failure_code::overloaded, "the server is at capacity: " + what + "; retry later", {},
                 retry_after_s()};
}

}  // namespace troupe::frontend
