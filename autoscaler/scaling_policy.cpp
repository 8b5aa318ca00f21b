// The scaling policies (see scaling_policy.hpp).
#include "autoscaler/scaling_policy.hpp"

#include <algorithm>
#include <cmath>
#include <deque>
#include <optional>
#include <sstream>

namespace troupe::autoscaler {

namespace {

class fixed_policy final : public scaling_policy {
 public:
  explicit fixed_policy(int32_t n) : n_(n) {}
  [[nodiscard]] decision decide(const observation&) override { return {n_, "fixed at " + std::to_string(n_)}; }
  [[nodiscard]] std::string_view name() const override { return "fixed"; }

 private:
  int32_t n_;
};

std::string format(double v) {
  std::ostringstream s;
  s.precision(3);
  s << v;
  return s.str();
}

class target_policy final : public scaling_policy {
 public:
  explicit target_policy(scaling_config c) : c_(std::move(c)) {}
  [[nodiscard]] std::string_view name() const override { return "target"; }

  [[nodiscard]] decision decide(const observation& o) override {
    const double signal = mean_signal(o);
    const int32_t current = std::max(o.current, 1);
    // What this instant asks for: ceil(current x signal / target), in [min, max].
    int32_t wish = int32_t(std::ceil(double(current) * signal / c_.target - 1e-9));
    if (o.serving.empty() && o.current > 0) wish = std::max(wish, o.current);  // still starting: no load seen yet
    if (o.current == 0 && o.held > 0) wish = std::max(wish, 1);
    wish = std::clamp(wish, c_.min_replicas, c_.max_replicas);
    if (o.current < c_.min_replicas) wish = std::max(wish, c_.min_replicas);
    if (!first_) first_ = o.now;
    wishes_.push_back({o.now, wish});
    const double keep_s = std::max(c_.up_window_s, c_.down_window_s);
    while (!wishes_.empty() && o.now - wishes_.front().at > to_duration(keep_s)) wishes_.pop_front();
    const std::string what = c_.signal + " " + format(signal) + " per group, target " + format(c_.target);
    if (o.current < c_.min_replicas) return {c_.min_replicas, "below the minimum " + std::to_string(c_.min_replicas)};
    if (o.current > c_.max_replicas) return {c_.max_replicas, "above the maximum " + std::to_string(c_.max_replicas)};
    if (o.current == 0 && o.held > 0)
      return {1, "scale from zero: " + std::to_string(o.held) + " requests wait for a group"};
    // Up: the smallest wish over the up-window (the load has asked for more all that time).
    const int32_t up = least_since(o.now - to_duration(c_.up_window_s));
    if (up > o.current && covers(o.now, c_.up_window_s)) return {up, what};
    // Down: the largest wish over the down-window, and only if the groups left stay under target.
    const int32_t down = most_since(o.now - to_duration(c_.down_window_s));
    if (down < o.current && covers(o.now, c_.down_window_s)) {
      const int32_t n = o.current;
      if (n == 1) {  // to zero (min 0) only when nothing at all runs or waits
        if (signal <= 0 && o.held == 0) return {0, what + "; idle for the down-window: to zero"};
      } else if (const double after = signal * double(n) / double(n - 1); after < c_.target) {
        return {n - 1, what + "; the " + std::to_string(n - 1) + " left would see " + format(after)};
      }
    }
    return {o.current, what};
  }

 private:
  struct wish_at {
    clock::time_point at;
    int32_t wish;
  };
  static clock::duration to_duration(double s) {
    return std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(s));
  }
  [[nodiscard]] double mean_signal(const observation& o) const {
    if (o.serving.empty()) return 0;
    double sum = 0;
    for (const group_load& g : o.serving) {
      if (c_.signal == "kv") sum += g.kv_used;
      else if (c_.signal == "waiting") sum += double(g.waiting);
      else if (c_.signal == "queue") sum += g.queue_delay_p90_s;
      else sum += double(g.outstanding_tokens);
    }
    return sum / double(o.serving.size());
  }
  // True when the history reaches back a whole window (a fresh policy does not act on one sample).
  [[nodiscard]] bool covers(clock::time_point now, double window_s) const {
    return first_ && now - *first_ >= to_duration(window_s);
  }
  [[nodiscard]] int32_t least_since(clock::time_point t) const {
    int32_t v = c_.max_replicas;
    for (const wish_at& w : wishes_)
      if (w.at >= t) v = std::min(v, w.wish);
    return v;
  }
  [[nodiscard]] int32_t most_since(clock::time_point t) const {
    int32_t v = c_.min_replicas;
    for (const wish_at& w : wishes_)
      if (w.at >= t) v = std::max(v, w.wish);
    return v;
  }

  scaling_config c_;
  std::deque<wish_at> wishes_;
  std::optional<clock::time_point> first_;  // the first observation: history starts there
};

}  // namespace

expected<std::unique_ptr<scaling_policy>> make_scaling_policy(const std::string& name, const scaling_config& c) {
  if (c.min_replicas < 0 || c.max_replicas < 1 || c.min_replicas > c.max_replicas || c.max_replicas > 64)
    return fail("--min-workers " + std::to_string(c.min_replicas) + " / --max-workers " +
                std::to_string(c.max_replicas) + ": give 0 <= min <= max, 1 <= max <= 64");
  if (name == "fixed") {
    if (c.min_replicas != c.max_replicas)
      return fail("--scale-policy fixed keeps one number of workers: give --min-workers = --max-workers");
    return std::unique_ptr<scaling_policy>(new fixed_policy(c.min_replicas));
  }
  if (name == "target") {
    if (c.signal != "outstanding" && c.signal != "kv" && c.signal != "waiting" && c.signal != "queue")
      return fail("--scale-signal '" + c.signal + "': give outstanding, kv, waiting or queue");
    if (!(c.target > 0) || (c.signal == "kv" && c.target > 1))
      return fail("--scale-target " + format(c.target) + ": give a value > 0 (for kv, a fraction up to 1)");
    if (!(c.up_window_s >= 0 && c.up_window_s <= 3600) || !(c.down_window_s >= 0 && c.down_window_s <= 3600))
      return fail("--scale-up-window / --scale-down-window: give 0 to 3600 seconds");
    return std::unique_ptr<scaling_policy>(new target_policy(c));
  }
  return fail("--scale-policy '" + name + "': give fixed or target");
}

}  // namespace troupe::autoscaler
