// Range checks of a request's sampling parameters; each error names the parameter and its range.
#include "common/sampling_params.hpp"

#include <cmath>
#include <cstdio>
#include <string>

namespace troupe {
namespace {

// "%g" keeps messages short ("got 1.5", "got inf", "got nan"); std::format is not in GCC 12.
[[nodiscard]] std::string show(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Comparisons are written so that NaN fails every range check.
[[nodiscard]] bool in_closed(float v, float lo, float hi) { return v >= lo && v <= hi; }

}  // namespace

expected<void> validate(const sampling_params& p) {
  if (!(std::isfinite(p.temperature) && p.temperature >= 0.0f)) {
    return fail("temperature must be finite and >= 0, got " + show(p.temperature));
  }
  if (!(p.top_p > 0.0f && p.top_p <= 1.0f)) {
    return fail("top_p must be in (0, 1], got " + show(p.top_p));
  }
  if (p.top_k < -1) {
    return fail("top_k must be >= -1 (0 or -1 = off), got " + std::to_string(p.top_k));
  }
  if (!in_closed(p.min_p, 0.0f, 1.0f)) {
    return fail("min_p must be in [0, 1], got " + show(p.min_p));
  }
  if (!(std::isfinite(p.repetition_penalty) && p.repetition_penalty > 0.0f)) {
    return fail("repetition_penalty must be finite and > 0, got " + show(p.repetition_penalty));
  }
  if (!in_closed(p.presence_penalty, -2.0f, 2.0f)) {
    return fail("presence_penalty must be in [-2, 2], got " + show(p.presence_penalty));
  }
  if (!in_closed(p.frequency_penalty, -2.0f, 2.0f)) {
    return fail("frequency_penalty must be in [-2, 2], got " + show(p.frequency_penalty));
  }
  if (p.logprobs < -1 || p.logprobs > 20) {
    return fail("logprobs must be in [-1, 20], got " + std::to_string(p.logprobs));
  }
  return {};
}

}  // namespace troupe
