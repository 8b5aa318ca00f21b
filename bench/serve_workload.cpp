// The synthetic serving workload (see serve_workload.hpp).
#include "bench/serve_workload.hpp"

#include <cmath>
#include <cstdlib>
#include <limits>

namespace troupe::bench {

std::mt19937_64 stream_rng(uint64_t seed, uint32_t stream) {
  std::seed_seq seq{uint32_t(seed), uint32_t(seed >> 32), stream};
  return std::mt19937_64(seq);
}

bool parse_rate(const std::string& s, double& rate) {
  if (s == "inf" || s == "infinity") {
    rate = std::numeric_limits<double>::infinity();
    return true;
  }
  char* end = nullptr;
  rate = std::strtod(s.c_str(), &end);
  return !s.empty() && end == s.c_str() + s.size() && std::isfinite(rate) && rate > 0;
}

std::vector<double> poisson_arrivals(int64_t n, double rate, uint64_t seed) {
  std::vector<double> t(size_t(n), 0.0);
  if (std::isinf(rate)) return t;
  auto rng = stream_rng(seed, 1);
  std::exponential_distribution<double> gap(rate);
  for (size_t i = 1; i < t.size(); ++i) t[i] = t[i - 1] + gap(rng);
  return t;
}

std::vector<std::vector<int64_t>> token_prompts(int64_t n, int64_t input_len, int64_t shared_prefix, int64_t vocab,
                                                uint64_t seed) {
  std::uniform_int_distribution<int64_t> pick(vocab / 10, vocab - 1);
  auto prefix_rng = stream_rng(seed, 2), rest_rng = stream_rng(seed, 3);
  std::vector<int64_t> ids(static_cast<size_t>(input_len), 0);
  for (int64_t i = 0; i < shared_prefix; ++i) ids[size_t(i)] = pick(prefix_rng);
  std::vector<std::vector<int64_t>> prompts;
  for (int64_t r = 0; r < n; ++r) {
    for (int64_t i = shared_prefix; i < input_len; ++i) ids[size_t(i)] = pick(rest_rng);
    prompts.push_back(ids);
  }
  return prompts;
}

}  // namespace troupe::bench
