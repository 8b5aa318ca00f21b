// Tests for the sampler: validation messages, greedy, seeding, the distribution each filter leaves
// (checked against references computed here in double), penalties and raw logprobs.
#include "engine/sampler.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <set>
#include <tuple>
#include <vector>

namespace troupe::engine {
namespace {

std::vector<float> random_logits(size_t n, uint64_t seed, float scale = 3.0f) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = dist(rng);
  return v;
}

std::vector<double> softmax(const std::vector<float>& logits, double temperature = 1.0) {
  const double m = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double sum = 0.0;
  for (size_t i = 0; i < logits.size(); ++i) sum += p[i] = std::exp((logits[i] - m) / temperature);
  for (auto& x : p) x /= sum;
  return p;
}

// Draws `n` tokens, each from a fresh copy of `logits` (the sampler edits them in place).
std::vector<int32_t> draw(sampler& s, const std::vector<float>& logits, int n,
                          std::span<const int32_t> prompt = {}) {
  std::vector<int32_t> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    auto copy = logits;
    out.push_back(s.sample(copy, prompt, uint64_t(i)).token);
  }
  return out;
}

std::map<int32_t, int> histogram(const std::vector<int32_t>& tokens) {
  std::map<int32_t, int> h;
  for (int32_t t : tokens) ++h[t];
  return h;
}

// Pearson chi-square of observed counts against expected probabilities (over tokens with p > 0);
// any draw of a token with p == 0 returns infinity.
double chi_square(const std::map<int32_t, int>& observed, const std::vector<double>& p, int draws) {
  double chi = 0.0;
  for (size_t t = 0; t < p.size(); ++t) {
    auto it = observed.find(static_cast<int32_t>(t));
    const double o = it == observed.end() ? 0.0 : it->second;
    if (p[t] == 0.0) {
      if (o > 0) return INFINITY;
      continue;
    }
    const double e = p[t] * draws;
    chi += (o - e) * (o - e) / e;
  }
  return chi;
}

// --- validate -------------------------------------------------------------------------------

TEST(SamplerValidate, DefaultsAndEdgesPass) {
  EXPECT_TRUE(validate({}));
  sampling_params p;
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.top_k = -1;
  p.min_p = 1.0f;
  p.repetition_penalty = 0.01f;
  p.presence_penalty = -2.0f;
  p.frequency_penalty = 2.0f;
  p.logprobs = 20;
  EXPECT_TRUE(validate(p));
}

TEST(SamplerValidate, ExactMessageForTopP) {
  sampling_params p;
  p.top_p = 1.5f;
  auto r = validate(p);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.message(), "top_p must be in (0, 1], got 1.5");
}

TEST(SamplerValidate, EachBadValueNamesItself) {
  struct bad {
    const char* name;
    void (*set)(sampling_params&);
    const char* value;
  };
  const bad cases[] = {
      {"temperature", [](sampling_params& p) { p.temperature = -0.5f; }, "-0.5"},
      {"temperature", [](sampling_params& p) { p.temperature = INFINITY; }, "inf"},
      {"temperature", [](sampling_params& p) { p.temperature = NAN; }, "nan"},
      {"top_p", [](sampling_params& p) { p.top_p = 0.0f; }, "got 0"},
      {"top_p", [](sampling_params& p) { p.top_p = NAN; }, "nan"},
      {"top_k", [](sampling_params& p) { p.top_k = -2; }, "-2"},
      {"min_p", [](sampling_params& p) { p.min_p = -0.25f; }, "-0.25"},
      {"min_p", [](sampling_params& p) { p.min_p = 1.5f; }, "1.5"},
      {"repetition_penalty", [](sampling_params& p) { p.repetition_penalty = 0.0f; }, "got 0"},
      {"repetition_penalty", [](sampling_params& p) { p.repetition_penalty = -1.0f; }, "-1"},
      {"presence_penalty", [](sampling_params& p) { p.presence_penalty = 2.5f; }, "2.5"},
      {"presence_penalty", [](sampling_params& p) { p.presence_penalty = -3.0f; }, "-3"},
      {"frequency_penalty", [](sampling_params& p) { p.frequency_penalty = -2.5f; }, "-2.5"},
      {"frequency_penalty", [](sampling_params& p) { p.frequency_penalty = NAN; }, "nan"},
      {"logprobs", [](sampling_params& p) { p.logprobs = 21; }, "21"},
      {"logprobs", [](sampling_params& p) { p.logprobs = -2; }, "-2"},
  };
  for (const auto& c : cases) {
    sampling_params p;
    c.set(p);
    auto r = validate(p);
    ASSERT_FALSE(r) << c.name << " " << c.value;
    EXPECT_EQ(r.message().rfind(c.name, 0), 0u) << r.message();
    EXPECT_NE(r.message().find(c.value), std::string::npos) << r.message();
    EXPECT_NE(r.message().find_first_of("[(>"), std::string::npos) << "no range in: " << r.message();
  }
}

// --- greedy and seeding ---------------------------------------------------------------------

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  sampling_params p;
  p.temperature = 0.0f;
  sampler s(p);
  std::vector<float> logits = {0.1f, 2.0f, -1.0f, 2.5f, 2.5f, 1.0f};
  EXPECT_EQ(s.sample(logits, {}, 0).token, 3);

  auto big = random_logits(32000, 7);
  const auto want = static_cast<int32_t>(std::max_element(big.begin(), big.end()) - big.begin());
  EXPECT_EQ(s.sample(big, {}, 0).token, want);
}

TEST(Sampler, SameSeedSameSequenceDifferentSeedDifferent) {
  std::vector<float> logits(16, 0.0f);  // uniform: every draw is decided by the generator
  sampling_params p;
  p.seed = 1234;
  sampler a(p), b(p);
  p.seed = 1235;
  sampler c(p);
  const auto sa = draw(a, logits, 200);
  const auto sb = draw(b, logits, 200);
  const auto sc = draw(c, logits, 200);
  EXPECT_EQ(sa, sb);
  EXPECT_NE(sa, sc);
  EXPECT_GT(histogram(sa).size(), 10u);  // and it is not stuck on one token
}

// A draw depends on (seed, position) alone: a sampler made anew (a request resumed on another
// group) that draws from position 120 on gets what the first one got there, whatever came before.
TEST(Sampler, DrawsDependOnSeedAndPositionAlone) {
  std::vector<float> logits(64, 0.0f);
  sampling_params p;
  p.temperature = 0.9f;
  p.seed = 77;
  sampler first(p);
  std::vector<int32_t> undisturbed;
  for (uint64_t pos = 100; pos < 160; ++pos) {
    auto copy = logits;
    undisturbed.push_back(first.sample(copy, {}, pos).token);
  }
  sampler resumed(p);
  for (uint64_t pos = 120; pos < 160; ++pos) {
    auto copy = logits;
    EXPECT_EQ(resumed.sample(copy, {}, pos).token, undisturbed[pos - 100]) << pos;
  }
  // And the draw at a position does not depend on the order positions are drawn in.
  sampler backwards(p);
  for (uint64_t pos = 159; pos >= 100; --pos) {
    auto copy = logits;
    EXPECT_EQ(backwards.sample(copy, {}, pos).token, undisturbed[pos - 100]) << pos;
  }
  EXPECT_GT(histogram(undisturbed).size(), 20u);
}

TEST(Sampler, UnseededSamplersDiffer) {
  std::vector<float> logits(1000, 0.0f);
  sampler a({}), b({});
  EXPECT_NE(draw(a, logits, 50), draw(b, logits, 50));
}

// --- distribution ---------------------------------------------------------------------------

// 20k draws, 6 tokens (5 degrees of freedom): chi-square above 25 has p < 2e-4 under the null.
constexpr int kDraws = 20000;
constexpr double kChiBound5 = 25.0;

TEST(Sampler, TemperatureMatchesSoftmaxOverT) {
  const std::vector<float> logits = {1.0f, 0.5f, 0.0f, -0.5f, 1.5f, -1.0f};
  for (float t : {1.0f, 0.6f, 2.0f}) {
    sampling_params p;
    p.temperature = t;
    p.seed = 99;
    sampler s(p);
    const auto h = histogram(draw(s, logits, kDraws));
    const auto want = softmax(logits, t);
    EXPECT_LT(chi_square(h, want, kDraws), kChiBound5) << "T=" << t;
    // A wrong temperature must fail the same test: T=1 frequencies against T=0.6 probabilities.
    if (t == 1.0f) {
      EXPECT_GT(chi_square(h, softmax(logits, 0.6), kDraws), 100.0);
    }
  }
}

TEST(Sampler, TopKOneEqualsGreedy) {
  sampling_params p;
  p.top_k = 1;
  p.temperature = 1.5f;
  p.seed = 5;
  sampler s(p);
  for (uint64_t seed = 0; seed < 20; ++seed) {
    auto logits = random_logits(5000, seed, 0.1f);  // flat: without top_k the draw would wander
    const auto want = static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
    EXPECT_EQ(s.sample(logits, {}, 0).token, want);
  }
}

TEST(Sampler, TopKRestrictsSupportAndRenormalizes) {
  const std::vector<float> logits = {0.2f, 1.0f, -0.3f, 0.9f, 0.95f, 0.1f, 0.0f};
  sampling_params p;
  p.top_k = 3;
  p.seed = 11;
  sampler s(p);
  const auto h = histogram(draw(s, logits, kDraws));
  std::vector<double> want(logits.size(), 0.0);
  const double z = std::exp(1.0) + std::exp(0.9) + std::exp(0.95);
  for (int t : {1, 3, 4}) want[static_cast<size_t>(t)] = std::exp(static_cast<double>(logits[static_cast<size_t>(t)])) / z;
  EXPECT_EQ(h.size(), 3u);
  EXPECT_LT(chi_square(h, want, kDraws), 15.0);  // 2 dof: p < 6e-4
}

// Ties at the k-th value go to the lowest ids, for small k (heap scan) and large k (selection).
TEST(Sampler, TopKTiesGoToLowestIds) {
  std::vector<float> logits(1000, 0.0f);
  logits[900] = 1.0f;
  logits[901] = 1.0f;
  for (int32_t k : {5, 100}) {
    sampling_params p;
    p.top_k = k;
    p.temperature = 0.2f;  // the two best dominate; the tied rest still get draws
    p.seed = 30;
    sampler s(p);
    std::set<int32_t> want = {900, 901};
    for (int32_t t = 0; t < k - 2; ++t) want.insert(t);
    p.temperature = 5.0f;
    sampler flat(p);
    std::set<int32_t> seen;
    for (const auto& [t, c] : histogram(draw(flat, logits, 4000))) seen.insert(t);
    EXPECT_EQ(seen, want) << "k=" << k;
    for (const auto& [t, c] : histogram(draw(s, logits, 200))) EXPECT_TRUE(want.count(t)) << t;
  }
}

TEST(Sampler, MinusOneTopKIsOff) {
  sampling_params p;
  p.top_k = -1;
  sampler s(p);
  EXPECT_EQ(s.params().top_k, 0);
  const std::vector<float> logits(8, 0.0f);
  EXPECT_EQ(histogram(draw(s, logits, 2000)).size(), 8u);
}

// Probabilities 0.5, 0.25, 0.125, ...: the nucleus for top_p = 0.8 is exactly the first three.
TEST(Sampler, TopPKeepsTheNucleus) {
  std::vector<float> logits;
  for (int i = 0; i < 8; ++i) logits.push_back(-static_cast<float>(i) * std::log(2.0f));
  std::swap(logits[0], logits[5]);  // the best token is not id 0
  sampling_params p;
  p.top_p = 0.8f;
  p.seed = 3;
  sampler s(p);
  const auto h = histogram(draw(s, logits, kDraws));
  std::vector<double> want(8, 0.0);
  want[5] = 4.0 / 7.0;
  want[1] = 2.0 / 7.0;
  want[2] = 1.0 / 7.0;
  EXPECT_EQ(h.size(), 3u);
  EXPECT_LT(chi_square(h, want, kDraws), 15.0);

  p.top_p = 0.3f;  // below the best token's mass: the best token alone
  sampler one(p);
  EXPECT_EQ(histogram(draw(one, logits, 500)), (std::map<int32_t, int>{{5, 500}}));
}

// A nucleus of a few hundred tokens in a 150k vocab: exercises the blockwise partial sort over
// several rounds. The nucleus is computed here with a full sort in double.
TEST(Sampler, TopPLargeVocabMatchesFullSortReference) {
  const size_t vocab = 150000;
  auto logits = random_logits(vocab, 21, 0.5f);
  std::vector<int32_t> ids(vocab);
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), std::mt19937_64(8));
  for (size_t i = 0; i < 600; ++i) logits[static_cast<size_t>(ids[i])] = 9.0f + static_cast<float>(i % 7) * 0.1f;
  const float top_p = 0.7f;

  const auto prob = softmax(logits);
  std::vector<int32_t> order(vocab);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int32_t a, int32_t b) { return prob[a] > prob[b] || (prob[a] == prob[b] && a < b); });
  double cum = 0.0;
  size_t nucleus = 0;
  while (cum < top_p) cum += prob[static_cast<size_t>(order[nucleus++])];
  ASSERT_GT(nucleus, 300u);  // several growth rounds past the first block of 128
  // The boundary token sits clearly on its side: no float rounding can move it.
  ASSERT_LT(cum - prob[static_cast<size_t>(order[nucleus - 1])], top_p - 1e-5);
  ASSERT_GT(cum, top_p + 1e-5);
  const std::set<int32_t> allowed(order.begin(), order.begin() + static_cast<ptrdiff_t>(nucleus));

  sampling_params p;
  p.top_p = top_p;
  p.seed = 17;
  sampler s(p);
  const auto h = histogram(draw(s, logits, 400));
  for (const auto& [t, c] : h) EXPECT_TRUE(allowed.count(t)) << "token " << t << " outside the nucleus";
  EXPECT_GT(h.size(), nucleus / 3);  // the support is the nucleus, not a handful of tokens
  // The boundary token itself belongs to the nucleus; with top_k it goes the same way.
  p.top_k = static_cast<int32_t>(nucleus + 50);
  sampler sk(p);
  for (const auto& [t, c] : histogram(draw(sk, logits, 200))) EXPECT_TRUE(allowed.count(t)) << t;
}

// Equal logits over a vocab large enough for the bucketed path: the boundary falls inside one
// bucket of ties, and the nucleus is exactly the lowest 2500 ids (2500 of 5000 reaches 0.5).
TEST(Sampler, TopPTiesAtTheBoundaryGoToLowestIds) {
  const std::vector<float> logits(5000, 1.0f);
  sampling_params p;
  p.top_p = 0.5f;
  p.seed = 12;
  sampler s(p);
  const auto tokens = draw(s, logits, 2000);
  EXPECT_LT(*std::max_element(tokens.begin(), tokens.end()), 2500);
  EXPECT_GT(*std::max_element(tokens.begin(), tokens.end()), 2400);
  EXPECT_LT(*std::min_element(tokens.begin(), tokens.end()), 100);
}

TEST(Sampler, TopPAfterTopKRenormalizesOverTheTopK) {
  // Probabilities 0.4, 0.3, 0.2, 0.1. top_k = 2 leaves 4/7, 3/7; top_p = 0.5 then keeps only the
  // first (4/7 >= 0.5). Over the full vocab 0.4 < 0.5 would have kept two.
  const std::vector<float> logits = {std::log(0.3f), std::log(0.4f), std::log(0.1f), std::log(0.2f)};
  sampling_params p;
  p.top_k = 2;
  p.top_p = 0.5f;
  p.seed = 1;
  sampler s(p);
  EXPECT_EQ(histogram(draw(s, logits, 500)), (std::map<int32_t, int>{{1, 500}}));
}

TEST(Sampler, MinPDropsTokensBelowFractionOfMax) {
  // Probabilities proportional to 8, 5, 3.9, 4.1, 1: min_p = 0.5 keeps those >= 4 (ids 0, 1, 3).
  const std::vector<float> logits = {std::log(8.0f), std::log(5.0f), std::log(3.9f), std::log(4.1f), 0.0f};
  sampling_params p;
  p.min_p = 0.5f;
  p.seed = 2;
  sampler s(p);
  const auto h = histogram(draw(s, logits, kDraws));
  std::vector<double> want = {8.0 / 17.1, 5.0 / 17.1, 0.0, 4.1 / 17.1, 0.0};
  EXPECT_EQ(h.size(), 3u);
  EXPECT_LT(chi_square(h, want, kDraws), 15.0);

  // min_p works on probabilities after temperature: at T = 0.5 the ratios square (25/64 < 0.5).
  p.temperature = 0.5f;
  sampler hot(p);
  EXPECT_EQ(histogram(draw(hot, logits, 500)), (std::map<int32_t, int>{{0, 500}}));
}

// --- penalties ------------------------------------------------------------------------------

TEST(Sampler, RepetitionPenaltyDividesPositiveMultipliesNegative) {
  sampling_params p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  sampler s(p);
  const std::vector<int32_t> prompt = {0};

  std::vector<float> positive = {2.0f, 1.5f, -1.0f};  // 2.0 -> 1.0 < 1.5
  EXPECT_EQ(s.sample(positive, prompt, 0).token, 1);
  EXPECT_FLOAT_EQ(positive[0], 1.0f);

  std::vector<float> negative = {-1.0f, -1.5f, -3.0f};  // -1.0 -> -2.0 < -1.5
  EXPECT_EQ(s.sample(negative, prompt, 0).token, 1);
  EXPECT_FLOAT_EQ(negative[0], -2.0f);

  // Without the penalty the same logits pick token 0: the penalty is what changed the pick.
  sampling_params off = p;
  off.repetition_penalty = 1.0f;
  sampler plain(off);
  std::vector<float> again = {2.0f, 1.5f, -1.0f};
  EXPECT_EQ(plain.sample(again, prompt, 0).token, 0);
}

TEST(Sampler, RepetitionPenaltyOncePerTokenAndCoversGenerated) {
  sampling_params p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  sampler s(p);
  const std::vector<int32_t> prompt = {0, 0, 0};
  std::vector<float> logits = {2.0f, 0.9f};  // once: 1.0 > 0.9; three times would be 0.25
  EXPECT_EQ(s.sample(logits, prompt, 0).token, 0);

  s.accept(0);  // now generated too: still once
  std::vector<float> again = {2.0f, 0.9f};
  EXPECT_EQ(s.sample(again, prompt, 0).token, 0);
  EXPECT_FLOAT_EQ(again[0], 1.0f);

  // Generated tokens count without a prompt.
  std::vector<float> gen = {2.0f, 1.5f};
  EXPECT_EQ(s.sample(gen, {}, 0).token, 1);
}

TEST(Sampler, PresenceAndFrequencyAfterAccept) {
  const std::vector<float> logits = {1.0f, 0.9f, 0.0f};
  sampling_params p;
  p.temperature = 0.0f;
  p.presence_penalty = 0.2f;
  sampler pres(p);
  const std::vector<int32_t> prompt = {0};
  auto l = logits;
  EXPECT_EQ(pres.sample(l, prompt, 0).token, 0);  // the prompt does not count
  pres.accept(0);
  l = logits;
  EXPECT_EQ(pres.sample(l, prompt, 0).token, 1);  // 1.0 - 0.2 < 0.9
  EXPECT_FLOAT_EQ(l[0], 0.8f);

  p.presence_penalty = 0.0f;
  p.frequency_penalty = 0.06f;
  sampler freq(p);
  freq.accept(0);
  l = logits;
  EXPECT_EQ(freq.sample(l, {}, 0).token, 0);  // 1.0 - 0.06 > 0.9
  freq.accept(2);
  freq.accept(0);
  l = logits;
  EXPECT_EQ(freq.sample(l, {}, 0).token, 1);  // 1.0 - 0.12 < 0.9
  EXPECT_FLOAT_EQ(l[2], -0.06f);

  // A negative presence penalty encourages repeats.
  p.frequency_penalty = 0.0f;
  p.presence_penalty = -0.5f;
  sampler enc(p);
  enc.accept(2);
  l = logits;
  EXPECT_EQ(enc.sample(l, {}, 0).token, 0);
  enc.accept(1);
  l = logits;
  EXPECT_EQ(enc.sample(l, {}, 0).token, 1);  // 0.9 + 0.5 > 1.0
}

TEST(Sampler, PenaltyEntriesAreWhatSampleEdits) {
  // What a device gets to apply (penalty_entries + penalized_logit) is exactly what sample() does
  // to the logits, for each combination of penalties.
  const std::vector<int32_t> prompt = {4, 1, 4, 7, 99};  // 99 is outside the vocabulary: ignored
  for (const auto& [rep, pres, freq] : std::vector<std::tuple<float, float, float>>{
           {1.0f, 0.0f, 0.0f}, {1.3f, 0.0f, 0.0f}, {1.0f, 0.4f, 0.0f}, {1.0f, 0.0f, 0.3f}, {0.8f, -0.5f, 0.7f}}) {
    sampling_params p;
    p.temperature = 0.0f;
    p.repetition_penalty = rep;
    p.presence_penalty = pres;
    p.frequency_penalty = freq;
    sampler s(p);
    for (int32_t t : {2, 7, 2, 5, 2}) s.accept(t);
    std::vector<penalty_entry> entries;
    s.penalty_entries(prompt, 10, entries);
    std::vector<float> logits(10);
    for (size_t i = 0; i < logits.size(); ++i) logits[i] = float(i % 3) - 0.7f * float(i % 4);
    std::vector<float> want = logits;
    for (size_t i = 1; i < entries.size(); ++i) EXPECT_LT(entries[i - 1].token, entries[i].token) << "ascending, once each";
    for (const penalty_entry& e : entries) {
      want[size_t(e.token)] = penalized_logit(want[size_t(e.token)], rep, pres, freq, e.generated);
    }
    (void)s.sample(logits, prompt, 0);
    EXPECT_EQ(logits, want) << "rep " << rep << " presence " << pres << " frequency " << freq;
    // The entries themselves: generated tokens with their counts; prompt tokens only under a
    // repetition penalty; none without penalties.
    std::map<int32_t, int32_t> got;
    for (const penalty_entry& e : entries) got[e.token] = e.generated;
    if (rep == 1.0f && pres == 0.0f && freq == 0.0f) {
      EXPECT_TRUE(got.empty());
    } else if (rep != 1.0f) {
      EXPECT_EQ(got, (std::map<int32_t, int32_t>{{1, 0}, {2, 3}, {4, 0}, {5, 1}, {7, 1}}));
    } else {
      EXPECT_EQ(got, (std::map<int32_t, int32_t>{{2, 3}, {5, 1}, {7, 1}}));
    }
  }
}

TEST(Sampler, DeviceRuleCarriesTheParametersAndIndexesItsEntries) {
  sampling_params p;
  p.temperature = 0.7f;
  p.top_k = -1;  // vLLM's "off": the sampler's own spelling (0) reaches the device
  p.top_p = 0.9f;
  p.min_p = 0.05f;
  p.repetition_penalty = 1.1f;
  p.presence_penalty = 0.2f;
  p.frequency_penalty = 0.3f;
  sampler s(p);
  s.accept(4);
  std::vector<penalty_entry> penalties = {{99, 1}};  // another row's entry before this one
  const device_sampling d = s.device_rule(std::vector<int32_t>{1, 4}, 10, penalties);
  EXPECT_EQ(d.temperature, 0.7f);
  EXPECT_EQ(d.top_k, 0);
  EXPECT_EQ(d.top_p, 0.9f);
  EXPECT_EQ(d.min_p, 0.05f);
  EXPECT_EQ(d.repetition_penalty, 1.1f);
  EXPECT_EQ(d.presence_penalty, 0.2f);
  EXPECT_EQ(d.frequency_penalty, 0.3f);
  EXPECT_EQ(d.penalty_begin, 1);
  ASSERT_EQ(d.penalty_count, 2);
  EXPECT_EQ(penalties[1].token, 1);
  EXPECT_EQ(penalties[1].generated, 0);
  EXPECT_EQ(penalties[2].token, 4);
  EXPECT_EQ(penalties[2].generated, 1);
}

// --- logprobs -------------------------------------------------------------------------------

std::vector<double> log_softmax(const std::vector<float>& logits) {
  const double m = *std::max_element(logits.begin(), logits.end());
  double sum = 0.0;
  for (float l : logits) sum += std::exp(l - m);
  std::vector<double> out(logits.size());
  for (size_t i = 0; i < logits.size(); ++i) out[i] = logits[i] - m - std::log(sum);
  return out;
}

TEST(Sampler, LogprobsMatchDoubleLogSoftmaxAndTopNIsOrdered) {
  const auto logits = random_logits(150000, 42, 4.0f);
  const auto ref = log_softmax(logits);
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + 20, order.end(),
                    [&](int32_t a, int32_t b) { return ref[a] > ref[b]; });

  sampling_params p;
  p.logprobs = 20;
  p.seed = 4;
  sampler s(p);
  for (int step = 0; step < 5; ++step) {
    auto copy = logits;
    const auto r = s.sample(copy, {}, uint64_t(step));
    EXPECT_NEAR(r.logprob, ref[static_cast<size_t>(r.token)], 1e-5);
    ASSERT_EQ(r.top.size(), 20u);
    for (size_t i = 0; i < 20; ++i) {
      EXPECT_EQ(r.top[i].token, order[i]) << i;
      EXPECT_NEAR(r.top[i].logprob, ref[static_cast<size_t>(order[i])], 1e-5);
      if (i > 0) {
        EXPECT_GE(r.top[i - 1].logprob, r.top[i].logprob);
      }
    }
  }

  p.logprobs = 0;
  sampler none(p);
  auto copy = logits;
  const auto r = none.sample(copy, {}, 0);
  EXPECT_TRUE(r.top.empty());
  EXPECT_NEAR(r.logprob, ref[static_cast<size_t>(r.token)], 1e-5);
}

TEST(Sampler, LogprobIsOfRawLogitsEvenWhenPenalized) {
  const std::vector<float> logits = {3.0f, 2.9f, 0.5f, -1.0f};
  const auto ref = log_softmax(logits);
  sampling_params p;
  p.temperature = 0.0f;
  p.repetition_penalty = 1.5f;
  p.presence_penalty = 0.5f;
  p.logprobs = 2;
  sampler s(p);
  s.accept(1);
  const std::vector<int32_t> prompt = {1, 3};
  auto copy = logits;
  const auto r = s.sample(copy, prompt, 0);
  EXPECT_EQ(r.token, 0);
  // Penalized token 1 (2.9 / 1.5 - 0.5) still reports its raw logprob among the top.
  ASSERT_EQ(r.top.size(), 2u);
  EXPECT_EQ(r.top[1].token, 1);
  EXPECT_NEAR(r.top[1].logprob, ref[1], 1e-5);
  EXPECT_NEAR(r.logprob, ref[0], 1e-5);

  // Chosen token penalized: reports its raw logprob, not the penalized one.
  sampler t(p);
  std::vector<float> neg = {-0.5f, -3.0f, -4.0f, -5.0f};
  const auto ref_neg = log_softmax(neg);
  t.accept(0);
  const auto rn = t.sample(neg, std::vector<int32_t>{0}, 0);
  EXPECT_EQ(rn.token, 0);  // -0.5 * 1.5 - 0.5 = -1.25, still the best
  EXPECT_NEAR(rn.logprob, ref_neg[0], 1e-5);
}

// --- edges ----------------------------------------------------------------------------------

TEST(Sampler, MaskedLogitsAreNeverDrawn) {
  std::vector<float> logits(50, -INFINITY);
  logits[7] = 0.0f;
  logits[30] = 0.0f;
  sampling_params p;
  p.seed = 6;
  sampler s(p);
  const auto h = histogram(draw(s, logits, 1000));
  EXPECT_EQ(h.size(), 2u);
  EXPECT_TRUE(h.count(7) && h.count(30));
}

TEST(Sampler, NonFiniteLogitsStillGiveATokenInRange) {
  sampling_params p;
  p.top_k = 3;
  p.top_p = 0.5f;
  p.seed = 2;
  sampler s(p);
  for (float bad : {NAN, INFINITY}) {
    auto logits = random_logits(4000, 3);
    logits[17] = bad;
    const auto r = s.sample(logits, {}, 0);
    EXPECT_GE(r.token, 0);
    EXPECT_LT(r.token, 4000);
  }
  std::vector<float> masked(100, -INFINITY);
  EXPECT_EQ(s.sample(masked, {}, 0).token, 0);
}

TEST(Sampler, OutOfRangePromptTokensAreIgnoredAndEmptyLogitsGiveNoToken) {
  sampling_params p;
  p.temperature = 0.0f;
  p.repetition_penalty = 2.0f;
  sampler s(p);
  std::vector<float> logits = {1.0f, 0.5f};
  const std::vector<int32_t> prompt = {-1, 2, 1000};
  EXPECT_EQ(s.sample(logits, prompt, 0).token, 0);
  std::vector<float> empty;
  EXPECT_EQ(s.sample(empty, {}, 0).token, -1);
}

}  // namespace
}  // namespace troupe::engine
