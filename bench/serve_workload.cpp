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

bool parse_rate_schedule(const std::string& s, std::vector<rate_step>& steps, std::string& error) {
  steps.clear();
  size_t from = 0;
  while (from <= s.size()) {
    size_t to = s.find(',', from);
    if (to == std::string::npos) to = s.size();
    const std::string item = s.substr(from, to - from);
    const size_t colon = item.find(':');
    char* end_t = nullptr;
    char* end_r = nullptr;
    const std::string t_text = colon == std::string::npos ? "" : item.substr(0, colon);
    const std::string r_text = colon == std::string::npos ? "" : item.substr(colon + 1);
    const double t = std::strtod(t_text.c_str(), &end_t);
    const double r = std::strtod(r_text.c_str(), &end_r);
    if (t_text.empty() || r_text.empty() || end_t != t_text.c_str() + t_text.size() ||
        end_r != r_text.c_str() + r_text.size() || !std::isfinite(t) || !std::isfinite(r) || r < 0) {
      error = "'" + item + "' is not SECONDS:RATE with a rate >= 0";
      return false;
    }
    if (steps.empty() ? t != 0 : t <= steps.back().from_s) {
      error = steps.empty() ? "the first piece starts at 0, not " + t_text : "times must increase: " + t_text;
      return false;
    }
    steps.push_back({t, r});
    from = to + 1;
  }
  bool any = false;
  for (const rate_step& st : steps) any |= st.rate > 0;
  if (!any) {
    error = "every rate is 0";
    return false;
  }
  return true;
}

std::vector<double> scheduled_arrivals(int64_t n, const std::vector<rate_step>& steps, uint64_t seed) {
  std::vector<double> t;
  auto rng = stream_rng(seed, 1);
  double now = 0;
  for (size_t i = 0; i < steps.size() && int64_t(t.size()) < n; ++i) {
    const double end = i + 1 < steps.size() ? steps[i + 1].from_s : std::numeric_limits<double>::infinity();
    if (steps[i].rate <= 0) {
      now = end;
      continue;
    }
    std::exponential_distribution<double> gap(steps[i].rate);
    now = std::max(now, steps[i].from_s);
    while (int64_t(t.size()) < n) {
      const double next = now + gap(rng);
      if (next >= end) {
        now = end;
        break;
      }
      t.push_back(next);
      now = next;
    }
  }
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
