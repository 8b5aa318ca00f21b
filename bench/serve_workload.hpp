// The synthetic serving workload, shared by `troupe bench serve` (over HTTP) and `troupe bench engine
// --request-rate` (into the engine in-process), so that both see the same prompts at the same times
// for the same seed.
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace troupe::bench {

// Independent, reproducible streams from one seed: 1 arrivals, 2 the shared prefix, 3 the rest.
[[nodiscard]] std::mt19937_64 stream_rng(uint64_t seed, uint32_t stream);

// "inf" / "infinity", or a finite rate > 0; false otherwise.
[[nodiscard]] bool parse_rate(const std::string& s, double& rate);

// Arrival offsets in seconds: the first at 0, then exponential gaps (a Poisson process); all 0 for
// an infinite rate.
[[nodiscard]] std::vector<double> poisson_arrivals(int64_t n, double rate, uint64_t seed);

// One piece of a piecewise-constant request rate: from `from_s` on (until the next piece), `rate`
// requests/s (0: none).
struct rate_step {
  double from_s = 0;
  double rate = 0;
};

// "0:2,60:20,120:2": pieces at strictly increasing times from 0, rates finite and >= 0, the last
// rate > 0 or the schedule ends there, not all rates 0; false with `error` naming the bad piece.
[[nodiscard]] bool parse_rate_schedule(const std::string& s, std::vector<rate_step>& steps, std::string& error);

// Up to `n` arrival offsets of a Poisson process whose rate follows `steps` (memoryless: at each
// boundary the next gap is drawn afresh at the new rate); fewer when a last piece of rate 0 ends it.
[[nodiscard]] std::vector<double> scheduled_arrivals(int64_t n, const std::vector<rate_step>& steps, uint64_t seed);

// `n` prompts of `input_len` token ids drawn uniformly from [vocab/10, vocab) (clear of the low ids
// where special tokens live), the first `shared_prefix` ids the same in all.
[[nodiscard]] std::vector<std::vector<int64_t>> token_prompts(int64_t n, int64_t input_len, int64_t shared_prefix,
                                                              int64_t vocab, uint64_t seed);

}  // namespace troupe::bench
