// The figures of `troupe bench serve`: throughputs, latency percentiles, the table and the JSON
// (see serve_report.hpp).
#include "bench/serve_report.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numeric>

#include "common/json_output.hpp"

namespace troupe::bench {

namespace {
constexpr double nan = std::numeric_limits<double>::quiet_NaN();
}

double percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return nan;
  const double rank = std::clamp(q, 0.0, 1.0) * double(sorted.size() - 1);
  const size_t lo = size_t(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - double(lo));
}

latency_summary summarize(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  latency_summary s{nan, nan, nan, nan, values.size()};
  if (values.empty()) return s;
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / double(values.size());
  s.p50 = percentile(values, 0.50);
  s.p90 = percentile(values, 0.90);
  s.p99 = percentile(values, 0.99);
  return s;
}

latency_samples samples_of(const std::vector<request_result>& results) {
  latency_samples s;
  for (const request_result& r : results) {
    if (!r.success) continue;
    s.e2e.push_back(r.e2e_s);
    if (r.chunk_times_s.empty()) continue;
    const double ttft = r.chunk_times_s.front();
    s.ttft.push_back(ttft);
    if (r.output_tokens > 1) s.tpot.push_back((r.e2e_s - ttft) / double(r.output_tokens - 1));
    for (size_t i = 1; i < r.chunk_times_s.size(); ++i) s.itl.push_back(r.chunk_times_s[i] - r.chunk_times_s[i - 1]);
  }
  return s;
}

namespace {

latency_summary in_ms(std::vector<double> seconds) {
  for (double& x : seconds) x *= 1e3;
  return summarize(std::move(seconds));
}

std::string json_summary(const latency_summary& s) {
  return "{\"mean\":" + json_number(s.mean) + ",\"p50\":" + json_number(s.p50) + ",\"p90\":" + json_number(s.p90) +
         ",\"p99\":" + json_number(s.p99) + "}";
}

std::string fixed(double x, int decimals) {
  if (std::isnan(x)) return "-";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, x);
  return buf;
}

}  // namespace

namespace {

// A request with no content event has no TTFT or TPOT, so it meets no limit set on them.
bool within(const request_result& x, const serve_slo& slo) {
  const bool has_ttft = !x.chunk_times_s.empty();
  const double ttft_ms = has_ttft ? 1e3 * x.chunk_times_s.front() : 0;
  if (slo.ttft_ms > 0 && (!has_ttft || ttft_ms > slo.ttft_ms)) return false;
  if (slo.tpot_ms > 0 && (!has_ttft || (x.output_tokens > 1 &&
                                        (1e3 * x.e2e_s - ttft_ms) / double(x.output_tokens - 1) > slo.tpot_ms)))
    return false;
  return !(slo.e2e_ms > 0 && 1e3 * x.e2e_s > slo.e2e_ms);
}

}  // namespace

serve_report make_report(const std::vector<request_result>& results, double duration_s, const serve_slo& slo,
                         size_t max_errors) {
  serve_report r;
  r.duration_s = duration_s;
  r.slo = slo;
  std::vector<double> refusals;
  for (const request_result& x : results) {
    if (x.http_status == 429) refusals.push_back(x.e2e_s);
    if (x.success) {
      ++r.completed;
      r.total_input_tokens += x.prompt_tokens;
      r.total_output_tokens += x.output_tokens;
      if (slo.any() && within(x, slo)) ++r.good;
      continue;
    }
    ++r.failed;
    const auto same = std::find_if(r.errors.begin(), r.errors.end(),
                                   [&x](const error_count& e) { return e.message == x.error; });
    if (same != r.errors.end()) {
      ++same->count;
    } else if (r.errors.size() < max_errors) {
      r.errors.push_back({x.error, 1});
    }
  }
  if (duration_s > 0) {
    r.request_throughput = double(r.completed) / duration_s;
    r.output_throughput = double(r.total_output_tokens) / duration_s;
    r.total_token_throughput = double(r.total_input_tokens + r.total_output_tokens) / duration_s;
    r.goodput = double(r.good) / duration_s;
  }
  latency_samples s = samples_of(results);
  r.ttft_ms = in_ms(std::move(s.ttft));
  r.tpot_ms = in_ms(std::move(s.tpot));
  r.itl_ms = in_ms(std::move(s.itl));
  r.e2e_ms = in_ms(std::move(s.e2e));
  r.refused = int64_t(refusals.size());
  r.refusal_ms = in_ms(std::move(refusals));
  return r;
}

std::string report_json(const serve_report& r) {
  std::string out = "{\"completed\":" + std::to_string(r.completed) + ",\"failed\":" + std::to_string(r.failed) +
                    ",\"refused\":" + std::to_string(r.refused) + ",\"refusal_ms\":" + json_summary(r.refusal_ms) +
                    ",\"duration_s\":" + json_number(r.duration_s) +
                    ",\"request_throughput\":" + json_number(r.request_throughput) +
                    ",\"output_throughput\":" + json_number(r.output_throughput) +
                    ",\"total_token_throughput\":" + json_number(r.total_token_throughput) +
                    ",\"total_input_tokens\":" + std::to_string(r.total_input_tokens) +
                    ",\"total_output_tokens\":" + std::to_string(r.total_output_tokens) +
                    ",\"ttft_ms\":" + json_summary(r.ttft_ms) + ",\"tpot_ms\":" + json_summary(r.tpot_ms) +
                    ",\"itl_ms\":" + json_summary(r.itl_ms) + ",\"e2e_ms\":" + json_summary(r.e2e_ms) +
                    (r.slo.any() ? ",\"goodput\":" + json_number(r.goodput) + ",\"good_requests\":" + std::to_string(r.good)
                                 : std::string()) +
                    ",\"errors\":[";
  for (size_t i = 0; i < r.errors.size(); ++i) {
    if (i) out += ',';
    append_json_string(out, r.errors[i].message);
  }
  return out + "]}";
}

std::string report_table(const serve_report& r, const std::string& title) {
  std::string out = title + "\n";
  char line[256];
  const auto row = [&](const char* name, const std::string& value, const char* unit) {
    std::snprintf(line, sizeof line, "  %-24s %12s %s\n", name, value.c_str(), unit);
    out += line;
  };
  row("completed requests", std::to_string(r.completed), "");
  row("failed requests", std::to_string(r.failed), "");
  if (r.refused > 0) {
    row("  of them refused (429)", std::to_string(r.refused), "");
    row("  refusal p50 / p99", fixed(r.refusal_ms.p50, 1) + " / " + fixed(r.refusal_ms.p99, 1), "ms");
  }
  row("duration", fixed(r.duration_s, 2), "s");
  row("input tokens", std::to_string(r.total_input_tokens), "");
  row("output tokens", std::to_string(r.total_output_tokens), "");
  row("request throughput", fixed(r.request_throughput, 2), "req/s");
  row("output throughput", fixed(r.output_throughput, 1), "tok/s");
  row("total token throughput", fixed(r.total_token_throughput, 1), "tok/s");
  if (r.slo.any()) {
    std::string slo;
    for (const auto& [name, limit] : {std::pair{"TTFT", r.slo.ttft_ms}, {"TPOT", r.slo.tpot_ms}, {"E2E", r.slo.e2e_ms}})
      if (limit > 0) slo += std::string(slo.empty() ? "" : ", ") + name + " <= " + fixed(limit, 0) + " ms";
    row("goodput", fixed(r.goodput, 2), ("req/s (" + std::to_string(r.good) + " within " + slo + ")").c_str());
  }
  std::snprintf(line, sizeof line, "\n  %-10s %10s %10s %10s %10s %8s\n", "(ms)", "mean", "p50", "p90", "p99", "samples");
  out += line;
  const auto lat = [&](const char* name, const latency_summary& s) {
    std::snprintf(line, sizeof line, "  %-10s %10s %10s %10s %10s %8zu\n", name, fixed(s.mean, 2).c_str(),
                  fixed(s.p50, 2).c_str(), fixed(s.p90, 2).c_str(), fixed(s.p99, 2).c_str(), s.count);
    out += line;
  };
  lat("TTFT", r.ttft_ms);
  lat("TPOT", r.tpot_ms);
  lat("ITL", r.itl_ms);
  lat("E2E", r.e2e_ms);
  if (!r.errors.empty()) {
    out += "\n  errors (first distinct messages):\n";
    for (const error_count& e : r.errors) out += "    " + std::to_string(e.count) + "x " + e.message + "\n";
  }
  return out;
}

}  // namespace troupe::bench
