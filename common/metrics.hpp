// Prometheus metrics: counters, gauges and fixed-bucket histograms grouped in families with a fixed
// label set, owned by a metrics_registry that renders them in the text exposition format 0.0.4.
//
// Threading: updates (inc, set, add, observe) are lock-free relaxed atomics, safe from any thread
// (CAF workers, the kj loop). Creating a series and render() take the registry's mutex, so they too
// are safe from any thread; look a series up once and keep the reference on hot paths.
// Lifetime: a series reference stays valid as long as its registry; the registry does not move.
// Limits: a histogram scrape is not a snapshot: observations racing with render() may show in the
// buckets and not yet in _sum (or the reverse). _count is the sum of the rendered buckets, so
// `le="+Inf"` always equals _count. Counter and gauge values are doubles: integers add exactly up
// to 2^53.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace troupe {

// Label name -> value pairs naming one series of a family. Every series of a family has the same
// label names (in any order; rendered in the order of the family's first series).
using metric_labels = std::vector<std::pair<std::string, std::string>>;

// The Content-Type of render()'s output, for the /metrics HTTP response.
inline constexpr std::string_view prometheus_content_type = "text/plain; version=0.0.4; charset=utf-8";

// A monotonically increasing value (requests, tokens, errors).
class counter {
 public:
  // delta >= 0 (asserted); a negative delta is ignored in release builds: counters never go down.
  void inc(double delta = 1);
  [[nodiscard]] double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// A value that goes up and down (queue depth, KV use, live groups).
class gauge {
 public:
  void set(double value) { value_.store(value, std::memory_order_relaxed); }
  void add(double delta);
  [[nodiscard]] double value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> value_{0};
};

// Observations counted in fixed buckets: bucket i counts values <= bounds[i] (and > bounds[i-1]);
// one more bucket counts values above the last bound (+Inf). NaN observations are dropped.
class histogram {
 public:
  // bounds: finite and strictly increasing (checked by the registry).
  explicit histogram(std::vector<double> bounds);

  void observe(double value);

  [[nodiscard]] const std::vector<double>& bounds() const { return bounds_; }
  // Per-bucket (not cumulative) counts, bounds().size() + 1 of them, the last one for +Inf.
  [[nodiscard]] std::vector<uint64_t> bucket_counts() const;
  [[nodiscard]] uint64_t count() const;
  [[nodiscard]] double sum() const { return sum_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1
  std::atomic<double> sum_{0};
};

// Bucket bounds in seconds for request latencies (TTFT, TPOT, ITL, E2E): 1 ms to 60 s.
[[nodiscard]] std::vector<double> latency_seconds_buckets();

// start, start*factor, ..., count bounds (start > 0, factor > 1, count >= 1; asserted).
[[nodiscard]] std::vector<double> exponential_buckets(double start, double factor, int count);

// Owns the metric families. Not a global: the process's owner (the router, a node) makes one and
// passes it to whoever records. Misuse is a programming error and throws std::invalid_argument:
// an invalid metric or label name, a family name reused with another type, help text, label names
// or bucket bounds, a histogram label named "le".
class metrics_registry {
 public:
  metrics_registry();
  metrics_registry(const metrics_registry&) = delete;
  metrics_registry& operator=(const metrics_registry&) = delete;
  ~metrics_registry();

  // The series of family `name` with these labels, created on first use; the same reference after.
  [[nodiscard]] troupe::counter& counter(std::string name, std::string help, metric_labels labels = {});
  [[nodiscard]] troupe::gauge& gauge(std::string name, std::string help, metric_labels labels = {});
  [[nodiscard]] troupe::histogram& histogram(std::string name, std::string help,
                                             std::vector<double> bounds, metric_labels labels = {});

  // Every family in name order, its series in label-value order, in the text format 0.0.4.
  [[nodiscard]] std::string render() const;

 private:
  struct family;
  family& family_for(const std::string& name, const std::string& help, int type,
                     const metric_labels& labels);

  mutable std::mutex mutex_;
  std::map<std::string, std::unique_ptr<family>> families_;  // by name
};

}  // namespace troupe
