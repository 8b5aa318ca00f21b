// The figures of `troupe bench serve`: per-request results reduced to throughputs and latency
// percentiles, printed as a human table or as one JSON object.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bench/serve_client.hpp"

namespace troupe::bench {

// The q-quantile (q in [0, 1]) of sorted values by linear interpolation between closest ranks, as
// numpy.percentile's default (so figures compare with vLLM's benchmark). NaN when empty.
[[nodiscard]] double percentile(const std::vector<double>& sorted, double q);

// Mean and percentiles, in the unit of the values. All NaN when there are none.
struct latency_summary {
  double mean, p50, p90, p99;
  size_t count = 0;
};
[[nodiscard]] latency_summary summarize(std::vector<double> values);

// The latency samples of the successful requests, in seconds: TTFT (send to first content event),
// TPOT ((E2E - TTFT) / (output tokens - 1), for requests with more than one output token), ITL
// (every gap between consecutive content events) and E2E.
struct latency_samples {
  std::vector<double> ttft, tpot, itl, e2e;
};
[[nodiscard]] latency_samples samples_of(const std::vector<request_result>& results);

struct error_count {
  std::string message;
  int64_t count = 0;
};

// Service-level objectives for goodput, in ms; 0 leaves one unchecked. A completed request meets
// them when its TTFT, TPOT and E2E are each within their limit (as vLLM's --goodput counts).
struct serve_slo {
  double ttft_ms = 0, tpot_ms = 0, e2e_ms = 0;
  [[nodiscard]] bool any() const { return ttft_ms > 0 || tpot_ms > 0 || e2e_ms > 0; }
};

struct serve_report {
  int64_t completed = 0, failed = 0;
  int64_t refused = 0;            // of the failed: answered 429 (the server's admission control)
  latency_summary refusal_ms;     // send -> the whole 429 answer read
  double duration_s = 0;
  int64_t total_input_tokens = 0, total_output_tokens = 0;  // of the completed requests
  double request_throughput = 0, output_throughput = 0, total_token_throughput = 0;  // per second
  latency_summary ttft_ms, tpot_ms, itl_ms, e2e_ms;
  serve_slo slo;
  int64_t good = 0;       // completed requests within the SLO (when one is set)
  double goodput = 0;     // good requests per second
  std::vector<error_count> errors;  // the first distinct messages, with how often each came
};

// `duration_s`: from the first send to the last completion. Keeps up to max_errors messages.
[[nodiscard]] serve_report make_report(const std::vector<request_result>& results, double duration_s,
                                       const serve_slo& slo = {}, size_t max_errors = 5);

// {"completed":..,"failed":..,"refused":..,"refusal_ms":{..},"duration_s":..,"request_throughput":..,"output_throughput":..,
//  "total_token_throughput":..,"total_input_tokens":..,"total_output_tokens":..,
//  "ttft_ms":{"mean","p50","p90","p99"},"tpot_ms":{..},"itl_ms":{..},"e2e_ms":{..},"errors":[..]}
// plus "goodput" (req/s) and "good_requests" when an SLO is set. A figure with no samples is null.
[[nodiscard]] std::string report_json(const serve_report& r);

// The human table; `title` is its first line (what was run against what).
[[nodiscard]] std::string report_table(const serve_report& r, const std::string& title);

}  // namespace troupe::bench
