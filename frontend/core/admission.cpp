// Admission control (see admission.hpp).
#include "frontend/core/admission.hpp"

#include <algorithm>
#include <cmath>
#include <string>

namespace troupe::frontend {

namespace {
constexpr double window_s = 5.0;
}  // namespace

admission::ticket& admission::ticket::operator=(ticket&& other) noexcept {
  if (this != &other) {
    release(false);
    state_ = std::move(other.state_);
    tokens_ = other.tokens_;
    other.tokens_ = 0;
  }
  return *this;
}

std::optional<failure> admission::ticket::add_tokens(int64_t tokens) {
  if (!state_) return std::nullopt;
  auto& s = *state_;
  if (s.tokens + tokens > s.limits.max_queued_tokens && s.tokens > 0)
    return s.overloaded(("the queued requests' prompts hold " + std::to_string(s.tokens) + " tokens (limit " +
                         std::to_string(s.limits.max_queued_tokens) + ")").c_str());
  s.tokens += tokens;
  tokens_ += tokens;
  return std::nullopt;
}

void admission::ticket::release(bool started) {
  if (!state_) return;
  auto& s = *state_;
  --s.queued;
  s.tokens -= tokens_;
  tokens_ = 0;
  if (started) s.count_start();
  state_.reset();
}

std::variant<admission::ticket, failure> admission::admit() {
  auto& s = *state_;
  if (s.draining)
    return failure{failure_code::unavailable, "the server is shutting down and takes no new requests", {},
                   s.drain_retry_after_s};
  if (s.queued >= s.limits.max_queued_requests)
    return s.overloaded((std::to_string(s.queued) + " requests are queued (limit " +
                         std::to_string(s.limits.max_queued_requests) + ")").c_str());
  ++s.queued;
  ticket t;
  t.state_ = state_;
  return t;
}

void admission::start_draining(int32_t retry_after_s) {
  state_->draining = true;
  state_->drain_retry_after_s = retry_after_s;
}

void admission::state::count_start() {
  ++starts_in_window;
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - window_begin).count();
  if (elapsed < window_s) return;
  const double rate = double(starts_in_window) / elapsed;
  start_rate = start_rate > 0 ? 0.5 * start_rate + 0.5 * rate : rate;
  starts_in_window = 0;
  window_begin = now;
}

int32_t admission::state::retry_after_s() const {
  // Before a whole window has been measured, the starts so far.
  double rate = start_rate;
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - window_begin).count();
  if (rate <= 0 && elapsed > 0.5 && starts_in_window > 0) rate = double(starts_in_window) / elapsed;
  if (rate <= 0) return 1;
  return int32_t(std::clamp(std::ceil(double(queued) / rate), 1.0, 60.0));
}

failure admission::state::overloaded(const char* what) const {
  return failure{failure_code::overloaded, std::string("the server is at capacity: ") + what + "; retry later", {},
                 retry_after_s()};
}

}  // namespace troupe::frontend
