// The sampler: raw logprobs, HF repetition penalty, OpenAI presence/frequency penalties, then greedy
// or temperature + top-k + top-p + min-p and a draw from the sequence's own seeded generator.
#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <numeric>

#include "engine/kernels/cpu/kernels.hpp"

namespace troupe::engine {
namespace {

[[nodiscard]] uint64_t fresh_seed() {
  std::random_device rd;
  return (uint64_t{rd()} << 32) ^ uint64_t{rd()};
}

// Index of the largest value, lowest index on ties (what greedy and top_k = 1 must agree on).
[[nodiscard]] int32_t argmax(std::span<const float> v) {
  size_t best = 0;
  for (size_t i = 1; i < v.size(); ++i) {
    if (v[i] > v[best]) best = i;
  }
  return static_cast<int32_t>(best);
}

// The k-th largest value (1-based) of `v`, using `work` as storage. For the usual small k a
// min-heap of the best k seen is one pass that mostly compares against its top; for k near the
// vocab size (where the heap would do n log k work) nth_element on a copy.
[[nodiscard]] float kth_largest(std::span<const float> v, size_t k, std::vector<float>& work) {
  if (k <= v.size() / 64) {
    work.assign(v.begin(), v.begin() + static_cast<ptrdiff_t>(k));
    std::make_heap(work.begin(), work.end(), std::greater<>());
    for (size_t i = k; i < v.size(); ++i) {
      if (v[i] > work.front()) {
        std::pop_heap(work.begin(), work.end(), std::greater<>());
        work.back() = v[i];
        std::push_heap(work.begin(), work.end(), std::greater<>());
      }
    }
    return work.front();
  }
  work.assign(v.begin(), v.end());
  std::nth_element(work.begin(), work.begin() + static_cast<ptrdiff_t>(k - 1), work.end(), std::greater<>());
  return work[k - 1];
}

// Moves the top-p nucleus to the front of `cand` and returns its size: the fewest best tokens whose
// weight reaches `target`, at least one. Over a few hundred candidates a sort is cheapest; over a
// whole vocab one pass buckets the log-weights, the buckets above the boundary are taken unsorted,
// and only the boundary bucket is sorted. Ties go to the lowest id, so the nucleus is exact.
[[nodiscard]] size_t nucleus(std::span<int32_t> cand, std::span<const float> logits,
                             std::span<const float> weight, float pen_max, float inv_t, double target) {
  const auto better = [logits](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  // Walks [from, to) in order from `cum` until the target is reached; never returns 0.
  const auto walk = [weight, target](auto from, auto to, double cum, size_t keep) {
    for (auto it = from; it != to && (keep == 0 || cum < target); ++it) {
      cum += weight[*it];
      ++keep;
    }
    return keep;
  };
  if (cand.size() <= 1024) {
    std::sort(cand.begin(), cand.end(), better);
    return walk(cand.begin(), cand.end(), 0.0, 0);
  }

  // Buckets of width 1/64 in log-weight down to e^-64 (relative to the best token); everything
  // below shares the last bucket. The bucket is recomputed, not stored, with the same arithmetic.
  constexpr int kBuckets = 4096;
  constexpr float kScale = 64.0f;
  const auto bucket = [logits, pen_max, inv_t](int32_t t) {
    const float depth = -(logits[t] - pen_max) * inv_t * kScale;  // >= 0; +inf for masked tokens
    return depth < static_cast<float>(kBuckets - 1) ? static_cast<int>(depth) : kBuckets - 1;
  };
  std::vector<double> mass(kBuckets, 0.0);
  for (int32_t t : cand) mass[static_cast<size_t>(bucket(t))] += weight[t];
  int boundary = 0;
  double above = 0.0;
  while (boundary < kBuckets - 1 && above + mass[static_cast<size_t>(boundary)] < target) {
    above += mass[static_cast<size_t>(boundary++)];
  }

  auto mid = std::partition(cand.begin(), cand.end(), [&bucket, boundary](int32_t t) { return bucket(t) < boundary; });
  auto last = std::partition(mid, cand.end(), [&bucket, boundary](int32_t t) { return bucket(t) == boundary; });
  std::sort(mid, last, better);
  double cum = 0.0;
  for (auto it = cand.begin(); it != mid; ++it) cum += weight[*it];
  return walk(mid, last, cum, static_cast<size_t>(mid - cand.begin()));
}

}  // namespace

sampler::sampler(sampling_params params)
    : params_(params), seed_(params.seed ? *params.seed : fresh_seed()) {
  // vLLM spells "off" as -1, HF as 0; one spelling inside.
  if (params_.top_k < 0) params_.top_k = 0;
}

void sampler::accept(int32_t token) {
  auto it = std::lower_bound(counts_.begin(), counts_.end(), token,
                             [](const auto& entry, int32_t t) { return entry.first < t; });
  if (it != counts_.end() && it->first == token) {
    ++it->second;
  } else {
    counts_.insert(it, {token, 1});
  }
}

void sampler::penalty_entries(std::span<const int32_t> prompt, int32_t vocab, std::vector<penalty_entry>& out) const {
  const bool repetition = params_.repetition_penalty != 1.0f;
  const bool additive = params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f;
  if (!repetition && !additive) return;
  const size_t first = out.size();
  if (repetition) {
    for (const int32_t t : prompt) {
      if (t >= 0 && t < vocab) out.push_back({t, 0});
    }
  }
  for (const auto& [t, count] : counts_) {
    if (t >= 0 && t < vocab) out.push_back({t, count});
  }
  // Ascending by token; of equal tokens the generated entry (largest count) stays.
  const auto begin = out.begin() + std::ptrdiff_t(first);
  std::sort(begin, out.end(), [](const penalty_entry& a, const penalty_entry& b) {
    return a.token != b.token ? a.token < b.token : a.generated > b.generated;
  });
  out.erase(std::unique(begin, out.end(), [](const penalty_entry& a, const penalty_entry& b) { return a.token == b.token; }),
            out.end());
}

device_sampling sampler::device_rule(std::span<const int32_t> prompt, int32_t vocab,
                                     std::vector<penalty_entry>& penalties) const {
  device_sampling d;
  d.temperature = params_.temperature;
  d.top_k = params_.top_k;
  d.top_p = params_.top_p;
  d.min_p = params_.min_p;
  d.repetition_penalty = params_.repetition_penalty;
  d.presence_penalty = params_.presence_penalty;
  d.frequency_penalty = params_.frequency_penalty;
  d.penalty_begin = int32_t(penalties.size());
  penalty_entries(prompt, vocab, penalties);
  d.penalty_count = int32_t(penalties.size()) - d.penalty_begin;
  return d;
}

sample_result sampler::sample(std::span<float> logits, std::span<const int32_t> prompt, uint64_t position) {
  const size_t n = logits.size();
  if (n == 0) return {-1, -std::numeric_limits<float>::infinity(), {}};
  const auto vocab = static_cast<int32_t>(n);

  // 1. Raw log-softmax normalizer and top-N, before anything edits the logits. The normalizer
  //    holds to ~1e-6 over a 150k vocab, and is NaN when there is no distribution (NaN or +inf
  //    logits, or all -inf). SIMD: a scalar exp per logit cost ~0.13 ms at 32k, per sequence and
  //    step.
  const double raw_norm = cpu::log_sum_exp(logits);

  sample_result result{};
  const size_t top_n = params_.logprobs > 0 ? std::min(static_cast<size_t>(params_.logprobs), n) : 0;
  if (top_n > 0) {
    // A short sorted list beats a heap for N <= 20; ascending ids plus strict `>` keep the lowest
    // id first among equal logits. `logprob` holds the raw logit until the end.
    auto& top = result.top;
    top.reserve(top_n + 1);
    for (size_t i = 0; i < n; ++i) {
      const float l = logits[i];
      if (top.size() == top_n && !(l > top.back().logprob)) continue;
      auto pos = std::find_if(top.begin(), top.end(), [l](const token_logprob& e) { return e.logprob < l; });
      top.insert(pos, {static_cast<int32_t>(i), l});
      if (top.size() > top_n) top.pop_back();
    }
    for (auto& e : top) e.logprob = static_cast<float>(e.logprob - raw_norm);
  }

  // 2. Penalties, in place. Every token they touch is listed once (a token repeated in the prompt
  //    is penalized once, as HF's gather/scatter does) with its raw logit kept aside.
  entries_.clear();
  penalty_entries(prompt, vocab, entries_);
  touched_.clear();
  for (const penalty_entry& e : entries_) {
    touched_.emplace_back(e.token, logits[e.token]);
    logits[e.token] = penalized_logit(logits[e.token], params_.repetition_penalty, params_.presence_penalty,
                                      params_.frequency_penalty, e.generated);
  }

  // 3. Pick.
  const float pen_max = logits[argmax(logits)];
  int32_t chosen = -1;
  // No distribution to draw from when the logits hold NaN or +inf or are all -inf (raw_norm is
  // then not finite) or the penalties overflowed; the sorts below also need NaN-free input.
  if (params_.temperature == 0.0f || !std::isfinite(raw_norm) || !std::isfinite(pen_max)) {
    chosen = argmax(logits);
  } else {
    // Candidates in index_, weights exp((l - max) / T) in scratch_ indexed by token.
    index_.clear();
    if (params_.top_k > 0 && static_cast<size_t>(params_.top_k) < n) {
      // Find the k-th largest value, then collect by value; ties at it go to the lowest ids.
      const auto k = static_cast<size_t>(params_.top_k);
      const float kth = kth_largest(logits, k, scratch_);
      for (size_t i = 0; i < n; ++i) {
        if (logits[i] > kth) index_.push_back(static_cast<int32_t>(i));
      }
      for (size_t i = 0; i < n && index_.size() < k; ++i) {
        if (logits[i] == kth) index_.push_back(static_cast<int32_t>(i));
      }
    } else {
      index_.resize(n);
      std::iota(index_.begin(), index_.end(), 0);
    }
    size_t count = index_.size();

    scratch_.resize(n);
    const float inv_t = 1.0f / params_.temperature;
    double total = 0.0;
    for (size_t i = 0; i < count; ++i) {
      const int32_t t = index_[i];
      scratch_[t] = std::exp((logits[t] - pen_max) * inv_t);
      total += scratch_[t];
    }

    if (params_.top_p < 1.0f) {
      count = nucleus(std::span<int32_t>(index_.data(), count), logits, scratch_, pen_max, inv_t,
                      static_cast<double>(params_.top_p) * total);
    }

    if (params_.min_p > 0.0f) {
      // Relative to the best kept weight, so renormalizing after top-k/top-p does not change it.
      float max_w = 0.0f;
      for (size_t i = 0; i < count; ++i) max_w = std::max(max_w, scratch_[index_[i]]);
      const float threshold = params_.min_p * max_w;
      size_t kept = 0;
      for (size_t i = 0; i < count; ++i) {
        if (!(scratch_[index_[i]] < threshold)) index_[kept++] = index_[i];
      }
      count = kept;
    }

    total = 0.0;
    for (size_t i = 0; i < count; ++i) total += scratch_[index_[i]];
    const double u = counter_uniform(seed_, position) * total;
    double cum = 0.0;
    chosen = index_[count - 1];  // rounding can leave u just past the last partial sum
    for (size_t i = 0; i < count; ++i) {
      cum += scratch_[index_[i]];
      if (u < cum) {
        chosen = index_[i];
        break;
      }
    }
  }

  // 4. The chosen token's raw logprob: its logit before the penalties, if they touched it.
  float raw = logits[chosen];
  auto it = std::lower_bound(touched_.begin(), touched_.end(), chosen,
                             [](const auto& entry, int32_t t) { return entry.first < t; });
  if (it != touched_.end() && it->first == chosen) raw = it->second;
  result.token = chosen;
  result.logprob = static_cast<float>(raw - raw_norm);
  return result;
}

}  // namespace troupe::engine
