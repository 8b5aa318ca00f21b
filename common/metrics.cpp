// Prometheus metrics (see metrics.hpp): the series' atomics, the registry's families and the text
// exposition format 0.0.4 renderer.
#include "common/metrics.hpp"

#include <algorithm>
#include <cassert>
#include <charconv>
#include <cmath>
#include <stdexcept>

namespace troupe {

namespace {

enum metric_type : int { counter_type, gauge_type, histogram_type };

constexpr std::string_view type_name(int type) {
  switch (type) {
    case counter_type: return "counter";
    case gauge_type: return "gauge";
    default: return "histogram";
  }
}

// fetch_add on atomic<double> is a CAS loop; spelled out so that it does not depend on the
// library's C++20 floating-point atomic support.
void atomic_add(std::atomic<double>& target, double delta) {
  double old = target.load(std::memory_order_relaxed);
  while (!target.compare_exchange_weak(old, old + delta, std::memory_order_relaxed)) {
  }
}

bool valid_metric_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Label names starting with "__" are reserved for Prometheus itself.
bool valid_label_name(std::string_view name) {
  if (name.empty() || name.starts_with("__")) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    const char c = name[i];
    const bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
    if (!alpha && !(i > 0 && c >= '0' && c <= '9')) return false;
  }
  return true;
}

// Integral values print without an exponent (a token counter reads 1234567, not 1.234567e+06);
// others in the shortest form that reads back exactly.
void append_value(std::string& out, double v) {
  if (std::isnan(v)) {
    out += "NaN";
    return;
  }
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  char buf[64];
  std::to_chars_result r;
  if (v == std::trunc(v) && std::fabs(v) < 1e15) {
    r = std::to_chars(buf, buf + sizeof buf, static_cast<int64_t>(v));
  } else {
    r = std::to_chars(buf, buf + sizeof buf, v);
  }
  out.append(buf, r.ptr);
}

void append_count(std::string& out, uint64_t v) {
  char buf[24];
  out.append(buf, std::to_chars(buf, buf + sizeof buf, v).ptr);
}

void append_escaped_label_value(std::string& out, std::string_view value) {
  for (const char c : value) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '"': out += "\\\""; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

void append_escaped_help(std::string& out, std::string_view help) {
  for (const char c : help) {
    switch (c) {
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      default: out += c;
    }
  }
}

// `{a="x",b="y"` plus `extra` (already formatted, e.g. `le="0.1"`) and `}`; nothing when both are
// empty.
void append_labels(std::string& out, const std::vector<std::string>& names,
                   const std::vector<std::string>& values, std::string_view extra = {}) {
  if (names.empty() && extra.empty()) return;
  out += '{';
  for (size_t i = 0; i < names.size(); ++i) {
    if (i > 0) out += ',';
    out += names[i];
    out += "=\"";
    append_escaped_label_value(out, values[i]);
    out += '"';
  }
  if (!extra.empty()) {
    if (!names.empty()) out += ',';
    out += extra;
  }
  out += '}';
}

[[noreturn]] void misuse(const std::string& name, const std::string& what) {
  throw std::invalid_argument("metric " + name + ": " + what);
}

void check_bounds(const std::string& name, const std::vector<double>& bounds) {
  for (size_t i = 0; i < bounds.size(); ++i) {
    if (!std::isfinite(bounds[i])) misuse(name, "bucket bounds must be finite (+Inf is implicit)");
    if (i > 0 && !(bounds[i - 1] < bounds[i])) misuse(name, "bucket bounds must strictly increase");
  }
}

}  // namespace

void counter::inc(double delta) {
  assert(delta >= 0 && "counters only go up");
  if (!(delta >= 0)) return;
  atomic_add(value_, delta);
}

void gauge::add(double delta) { atomic_add(value_, delta); }

histogram::histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void histogram::observe(double value) {
  if (std::isnan(value)) return;
  // le is inclusive: the first bound >= value; past the end is the +Inf bucket.
  const size_t bucket = static_cast<size_t>(
      std::lower_bound(bounds_.begin(), bounds_.end(), value) - bounds_.begin());
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  atomic_add(sum_, value);
}

std::vector<uint64_t> histogram::bucket_counts() const {
  std::vector<uint64_t> counts(bounds_.size() + 1);
  for (size_t i = 0; i < counts.size(); ++i) counts[i] = counts_[i].load(std::memory_order_relaxed);
  return counts;
}

uint64_t histogram::count() const {
  uint64_t total = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) total += counts_[i].load(std::memory_order_relaxed);
  return total;
}

std::vector<double> latency_seconds_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60};
}

std::vector<double> exponential_buckets(double start, double factor, int count) {
  assert(start > 0 && factor > 1 && count >= 1);
  std::vector<double> bounds;
  bounds.reserve(static_cast<size_t>(std::max(count, 0)));
  double bound = start;
  for (int i = 0; i < count; ++i, bound *= factor) bounds.push_back(bound);
  return bounds;
}

// One family: its fixed shape and its series keyed by label values (in label_names order), so
// that render() lists series in a stable order whatever order threads created them in.
struct metrics_registry::family {
  std::string help;
  int type = counter_type;
  std::vector<std::string> label_names;
  std::vector<double> bounds;  // histograms only
  std::map<std::vector<std::string>, std::unique_ptr<troupe::counter>> counters;
  std::map<std::vector<std::string>, std::unique_ptr<troupe::gauge>> gauges;
  std::map<std::vector<std::string>, std::unique_ptr<troupe::histogram>> histograms;

  // The label values in label_names order; throws unless `labels` names exactly label_names.
  std::vector<std::string> values_of(const std::string& name, const metric_labels& labels) const {
    if (labels.size() != label_names.size()) misuse(name, "label names differ from the family's");
    std::vector<std::string> values;
    values.reserve(labels.size());
    for (const std::string& label : label_names) {
      const auto it = std::find_if(labels.begin(), labels.end(),
                                   [&](const auto& kv) { return kv.first == label; });
      if (it == labels.end()) misuse(name, "label names differ from the family's");
      values.push_back(it->second);
    }
    return values;
  }
};

metrics_registry::metrics_registry() = default;
metrics_registry::~metrics_registry() = default;

metrics_registry::family& metrics_registry::family_for(const std::string& name, const std::string& help,
                                                       int type, const metric_labels& labels) {
  auto it = families_.find(name);
  if (it != families_.end()) {
    family& f = *it->second;
    if (f.type != type) misuse(name, "already registered as a " + std::string(type_name(f.type)));
    if (f.help != help) misuse(name, "already registered with other help text");
    return f;
  }
  if (!valid_metric_name(name)) misuse(name, "invalid metric name");
  auto f = std::make_unique<family>();
  f->help = help;
  f->type = type;
  for (const auto& [label, value] : labels) {
    if (!valid_label_name(label)) misuse(name, "invalid label name '" + label + "'");
    if (type == histogram_type && label == "le") misuse(name, "a histogram cannot have a label 'le'");
    if (std::find(f->label_names.begin(), f->label_names.end(), label) != f->label_names.end()) {
      misuse(name, "label '" + label + "' given twice");
    }
    f->label_names.push_back(label);
  }
  return *families_.emplace(name, std::move(f)).first->second;
}

counter& metrics_registry::counter(std::string name, std::string help, metric_labels labels) {
  const std::lock_guard lock(mutex_);
  family& f = family_for(name, help, counter_type, labels);
  auto& slot = f.counters[f.values_of(name, labels)];
  if (!slot) slot = std::make_unique<troupe::counter>();
  return *slot;
}

gauge& metrics_registry::gauge(std::string name, std::string help, metric_labels labels) {
  const std::lock_guard lock(mutex_);
  family& f = family_for(name, help, gauge_type, labels);
  auto& slot = f.gauges[f.values_of(name, labels)];
  if (!slot) slot = std::make_unique<troupe::gauge>();
  return *slot;
}

histogram& metrics_registry::histogram(std::string name, std::string help, std::vector<double> bounds,
                                       metric_labels labels) {
  check_bounds(name, bounds);
  const std::lock_guard lock(mutex_);
  const bool is_new = !families_.contains(name);
  family& f = family_for(name, help, histogram_type, labels);
  if (is_new) {
    f.bounds = bounds;
  } else if (f.bounds != bounds) {
    misuse(name, "already registered with other bucket bounds");
  }
  auto& slot = f.histograms[f.values_of(name, labels)];
  if (!slot) slot = std::make_unique<troupe::histogram>(std::move(bounds));
  return *slot;
}

std::string metrics_registry::render() const {
  const std::lock_guard lock(mutex_);
  std::string out;
  for (const auto& [name, f] : families_) {
    out += "# HELP ";
    out += name;
    out += ' ';
    append_escaped_help(out, f->help);
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type_name(f->type);
    out += '\n';
    auto simple_series = [&](const auto& series) {
      for (const auto& [values, metric] : series) {
        out += name;
        append_labels(out, f->label_names, values);
        out += ' ';
        append_value(out, metric->value());
        out += '\n';
      }
    };
    simple_series(f->counters);
    simple_series(f->gauges);
    for (const auto& [values, h] : f->histograms) {
      const std::vector<uint64_t> counts = h->bucket_counts();
      uint64_t cumulative = 0;
      std::string le;
      for (size_t i = 0; i < counts.size(); ++i) {
        cumulative += counts[i];
        le = "le=\"";
        if (i < f->bounds.size()) {
          append_value(le, f->bounds[i]);
        } else {
          le += "+Inf";
        }
        le += '"';
        out += name;
        out += "_bucket";
        append_labels(out, f->label_names, values, le);
        out += ' ';
        append_count(out, cumulative);
        out += '\n';
      }
      out += name;
      out += "_sum";
      append_labels(out, f->label_names, values);
      out += ' ';
      append_value(out, h->sum());
      out += '\n';
      out += name;
      out += "_count";
      append_labels(out, f->label_names, values);
      out += ' ';
      append_count(out, cumulative);
      out += '\n';
    }
  }
  return out;
}

}  // namespace troupe
