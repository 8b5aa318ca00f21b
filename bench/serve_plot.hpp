// `troupe bench serve --plot FILE.svg`: one self-contained SVG (no scripts, fonts or links) with the
// latency CDFs (TTFT, TPOT, E2E) and the output token throughput over time, in 1 s buckets; with
// the server's replicas sampled, also the replicas and the TTFT over time.
#pragma once

#include <string>
#include <vector>

#include "bench/serve_client.hpp"

namespace troupe::bench {

// Ticks at a "nice" step (1, 2 or 5 times a power of ten) covering [min, max], from the last
// multiple of the step at or below min; at least two. Negative or non-finite bounds become 0..1.
[[nodiscard]] std::vector<double> axis_ticks(double min, double max);

// The SVG document. CDFs are of the successful requests; the throughput counts every content event
// as one token (a completed request's surplus usage tokens land on its last event), failed
// requests' tokens included, since the server produced them. `caption` is escaped.
// `replicas` (may be empty): the server's replicas over the run; when given, a third row shows them
// and each request's TTFT by its send time.
struct replica_sample {
  double t_s = 0;
  double replicas = 0;
};
[[nodiscard]] std::string render_svg(const std::vector<request_result>& results, const std::string& caption,
                                     const std::vector<replica_sample>& replicas = {});

}  // namespace troupe::bench
