// The figures of `troupe bench serve` against hand-computed values, its JSON read back with
// simdjson, and its SVG plot checked for well-formed, balanced markup.
#include <gtest/gtest.h>
#include <simdjson.h>

#include <cmath>
#include <string>
#include <vector>

#include "bench/serve_plot.hpp"
#include "bench/serve_report.hpp"
#include "bench/serve_workload.hpp"

namespace troupe::bench {
namespace {

TEST(percentile, interpolates_linearly_between_ranks) {
  const std::vector<double> v{1, 2, 3, 4};
  EXPECT_DOUBLE_EQ(percentile(v, 0.0), 1);
  EXPECT_DOUBLE_EQ(percentile(v, 0.5), 2.5);    // rank 1.5
  EXPECT_DOUBLE_EQ(percentile(v, 0.9), 3.7);    // rank 2.7
  EXPECT_DOUBLE_EQ(percentile(v, 0.99), 3.97);  // rank 2.97
  EXPECT_DOUBLE_EQ(percentile(v, 1.0), 4);
  EXPECT_DOUBLE_EQ(percentile({7}, 0.99), 7);
  EXPECT_TRUE(std::isnan(percentile({}, 0.5)));
}

TEST(summarize, sorts_and_averages) {
  const latency_summary s = summarize({10, 0, 30, 20, 40});
  EXPECT_DOUBLE_EQ(s.mean, 20);
  EXPECT_DOUBLE_EQ(s.p50, 20);
  EXPECT_DOUBLE_EQ(s.p90, 36);    // rank 3.6
  EXPECT_DOUBLE_EQ(s.p99, 39.6);  // rank 3.96
  EXPECT_EQ(s.count, 5u);
  EXPECT_TRUE(std::isnan(summarize({}).mean));
}

request_result ok(double start, std::vector<double> chunks, double e2e, int64_t out, int64_t in) {
  request_result r;
  r.success = true;
  r.start_s = start;
  r.chunk_times_s = std::move(chunks);
  r.e2e_s = e2e;
  r.output_tokens = out;
  r.prompt_tokens = in;
  return r;
}

request_result failed(std::string error) {
  request_result r;
  r.error = std::move(error);
  return r;
}

// Two completed requests and three failures:
//   A: chunks at 0.10, 0.15, 0.25 s, E2E 0.30 s, 4 output tokens (usage), 10 input tokens
//   B: chunks at 0.20, 0.30 s, E2E 0.40 s, 2 output tokens, 10 input tokens
// TTFT {100, 200} ms; TPOT A (300 - 100) / 3 = 66.67 ms, B (400 - 200) / 1 = 200 ms;
// ITL {50, 100, 100} ms; E2E {300, 400} ms. Over 2 s: 1 req/s, 3 output tok/s, 13 tok/s in all.
std::vector<request_result> sample_results() {
  return {ok(0, {0.10, 0.15, 0.25}, 0.30, 4, 10), failed("HTTP 503 Service Unavailable: overloaded"),
          ok(1, {0.20, 0.30}, 0.40, 2, 10), failed("connect(): Connection refused"),
          failed("HTTP 503 Service Unavailable: overloaded")};
}

TEST(make_report, hand_computed_figures) {
  const serve_report r = make_report(sample_results(), 2.0);
  EXPECT_EQ(r.completed, 2);
  EXPECT_EQ(r.failed, 3);
  EXPECT_EQ(r.total_input_tokens, 20);
  EXPECT_EQ(r.total_output_tokens, 6);
  EXPECT_DOUBLE_EQ(r.request_throughput, 1);
  EXPECT_DOUBLE_EQ(r.output_throughput, 3);
  EXPECT_DOUBLE_EQ(r.total_token_throughput, 13);
  EXPECT_DOUBLE_EQ(r.ttft_ms.mean, 150);
  EXPECT_DOUBLE_EQ(r.ttft_ms.p50, 150);
  EXPECT_DOUBLE_EQ(r.ttft_ms.p90, 190);
  EXPECT_NEAR(r.tpot_ms.mean, (200.0 / 3 + 200) / 2, 1e-9);
  EXPECT_NEAR(r.tpot_ms.p99, 200.0 / 3 + 0.99 * (200 - 200.0 / 3), 1e-9);
  EXPECT_EQ(r.itl_ms.count, 3u);
  EXPECT_NEAR(r.itl_ms.mean, 250.0 / 3, 1e-9);
  EXPECT_NEAR(r.itl_ms.p50, 100, 1e-9);
  EXPECT_NEAR(r.e2e_ms.p90, 390, 1e-9);
  ASSERT_EQ(r.errors.size(), 2u);
  EXPECT_EQ(r.errors[0].message, "HTTP 503 Service Unavailable: overloaded");
  EXPECT_EQ(r.errors[0].count, 2);
  EXPECT_EQ(r.errors[1].count, 1);
  EXPECT_EQ(make_report(sample_results(), 2.0, {}, 1).errors.size(), 1u);
}

TEST(make_report, goodput_counts_requests_within_every_limit) {
  EXPECT_EQ(make_report(sample_results(), 2.0).good, 0);  // no SLO: not counted
  serve_report r = make_report(sample_results(), 2.0, {.ttft_ms = 150});
  EXPECT_EQ(r.good, 1);  // A (100 ms), not B (200 ms)
  EXPECT_DOUBLE_EQ(r.goodput, 0.5);
  EXPECT_EQ(make_report(sample_results(), 2.0, {.tpot_ms = 100}).good, 1);  // A 66.7 ms, B 200 ms
  EXPECT_EQ(make_report(sample_results(), 2.0, {.e2e_ms = 350}).good, 1);   // A 300 ms, B 400 ms
  EXPECT_EQ(make_report(sample_results(), 2.0, {.ttft_ms = 250, .tpot_ms = 250, .e2e_ms = 500}).good, 2);
  EXPECT_EQ(make_report(sample_results(), 2.0, {.ttft_ms = 250, .tpot_ms = 100, .e2e_ms = 500}).good, 1);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(report_json(r)).get(doc), simdjson::SUCCESS);
  EXPECT_DOUBLE_EQ(double(doc["goodput"]), 0.5);
  EXPECT_EQ(int64_t(doc["good_requests"]), 1);
  EXPECT_NE(report_table(r, "t").find("TTFT <= 150 ms"), std::string::npos);
}

TEST(make_report, single_token_requests_have_no_tpot) {
  const serve_report r = make_report({ok(0, {0.5}, 0.5, 1, 3)}, 1.0);
  EXPECT_DOUBLE_EQ(r.ttft_ms.p50, 500);
  EXPECT_EQ(r.tpot_ms.count, 0u);
  EXPECT_EQ(r.itl_ms.count, 0u);
}

TEST(report_json, parses_and_carries_the_figures) {
  serve_report r = make_report(sample_results(), 2.0);
  r.errors.push_back({"a \"quoted\"\nmessage", 1});
  const std::string json = report_json(r);
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  EXPECT_EQ(int64_t(doc["completed"]), 2);
  EXPECT_EQ(int64_t(doc["failed"]), 3);
  EXPECT_DOUBLE_EQ(double(doc["duration_s"]), 2);
  EXPECT_DOUBLE_EQ(double(doc["request_throughput"]), 1);
  EXPECT_DOUBLE_EQ(double(doc["output_throughput"]), 3);
  EXPECT_DOUBLE_EQ(double(doc["total_token_throughput"]), 13);
  for (const char* key : {"ttft_ms", "tpot_ms", "itl_ms", "e2e_ms"}) {
    for (const char* stat : {"mean", "p50", "p90", "p99"}) EXPECT_TRUE(doc[key][stat].is_double()) << key << stat;
  }
  EXPECT_NEAR(double(doc["ttft_ms"]["p90"]), 190, 1e-3);
  simdjson::dom::array errors = doc["errors"];
  ASSERT_EQ(errors.size(), 3u);
  EXPECT_EQ(std::string_view(errors.at(2)), "a \"quoted\"\nmessage");
}

TEST(report_json, no_samples_are_null) {
  const std::string json = report_json(make_report({failed("x")}, 0.5));
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_EQ(parser.parse(json).get(doc), simdjson::SUCCESS) << json;
  EXPECT_TRUE(doc["ttft_ms"]["p50"].is_null());
  EXPECT_EQ(int64_t(doc["completed"]), 0);
  EXPECT_DOUBLE_EQ(double(doc["request_throughput"]), 0);
}

TEST(report_table, names_every_figure) {
  const std::string t = report_table(make_report(sample_results(), 2.0), "title line");
  EXPECT_EQ(t.rfind("title line\n", 0), 0u);
  for (const char* s : {"completed requests", "output throughput", "TTFT", "TPOT", "ITL", "E2E", "2x HTTP 503"})
    EXPECT_NE(t.find(s), std::string::npos) << s;
}

TEST(axis_ticks, nice_steps_covering_the_range) {
  EXPECT_EQ(axis_ticks(0, 7), (std::vector<double>{0, 2, 4, 6, 8}));
  EXPECT_EQ(axis_ticks(0, 10), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  const std::vector<double> small = axis_ticks(0, 0.3);
  ASSERT_EQ(small.size(), 4u);
  EXPECT_NEAR(small.back(), 0.3, 1e-12);
  EXPECT_EQ(axis_ticks(0, 0).size(), 6u);  // nothing to show: 0..1
  EXPECT_GE(axis_ticks(0, 12345).back(), 12345);
  EXPECT_EQ(axis_ticks(603, 611), (std::vector<double>{602, 604, 606, 608, 610, 612}));
}

// Every element is closed, in order; attributes are quoted; text has no raw '<' or '&'.
void expect_well_formed(const std::string& svg) {
  ASSERT_EQ(svg.rfind("<svg", 0), 0u);
  ASSERT_GE(svg.size(), 7u);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
  std::vector<std::string> open;
  size_t i = 0;
  while (i < svg.size()) {
    if (svg[i] == '&') {
      const size_t semi = svg.find(';', i);
      ASSERT_NE(semi, std::string::npos);
      const std::string entity = svg.substr(i, semi - i + 1);
      ASSERT_TRUE(entity == "&amp;" || entity == "&lt;" || entity == "&gt;" || entity == "&quot;") << entity;
    }
    if (svg[i] != '<') {
      ++i;
      continue;
    }
    size_t end = i + 1;
    bool quoted = false;
    for (; end < svg.size() && (quoted || svg[end] != '>'); ++end) {
      ASSERT_FALSE(!quoted && svg[end] == '<') << "at " << end;
      if (svg[end] == '"') quoted = !quoted;
    }
    ASSERT_LT(end, svg.size());
    const std::string tag = svg.substr(i + 1, end - i - 1);
    if (tag[0] == '/') {
      ASSERT_FALSE(open.empty()) << tag;
      ASSERT_EQ(open.back(), tag.substr(1));
      open.pop_back();
    } else if (tag.back() != '/') {
      open.push_back(tag.substr(0, tag.find(' ')));
    }
    i = end + 1;
  }
  EXPECT_TRUE(open.empty());
}

TEST(render_svg, well_formed_with_and_without_data) {
  std::vector<request_result> many = sample_results();
  for (int i = 0; i < 3000; ++i) many.push_back(ok(i * 0.01, {0.1 + i * 1e-4, 0.2 + i * 1e-4}, 0.3 + i * 1e-4, 5, 8));
  const std::string svg = render_svg(many, "serve <test> & \"caption\"");
  expect_well_formed(svg);
  EXPECT_NE(svg.find("TTFT CDF"), std::string::npos);
  EXPECT_NE(svg.find("Output throughput"), std::string::npos);
  EXPECT_NE(svg.find("&lt;test&gt; &amp;"), std::string::npos);
  EXPECT_NE(svg.find("<polyline"), std::string::npos);
  const std::string empty = render_svg({failed("x")}, "nothing");
  expect_well_formed(empty);
  EXPECT_NE(empty.find("no data"), std::string::npos);
}

TEST(render_svg, replicas_add_a_row_with_them_and_the_ttft_over_time) {
  const std::vector<request_result> results = sample_results();
  const std::string without = render_svg(results, "plain");
  EXPECT_EQ(without.find("Replicas"), std::string::npos);
  const std::string svg = render_svg(results, "scaled", {{0, 1}, {1, 1}, {2, 2}, {3, 3}, {4, 2}});
  expect_well_formed(svg);
  EXPECT_NE(svg.find(">Replicas<"), std::string::npos);
  EXPECT_NE(svg.find(">TTFT over time<"), std::string::npos);
  EXPECT_NE(svg.find("<circle"), std::string::npos);
  // Taller by one row of panels.
  const auto height = [](const std::string& s) { return std::atof(s.c_str() + s.find("height=\"") + 8); };
  EXPECT_GT(height(svg), height(without));
}

// --rate-schedule: pieces parsed with errors naming the bad one; arrivals follow each piece's rate
// and stop where a last piece of rate 0 begins.
TEST(rate_schedule, parses_and_shapes_the_arrivals) {
  std::vector<rate_step> steps;
  std::string why;
  ASSERT_TRUE(parse_rate_schedule("0:2,60:20,120:2", steps, why)) << why;
  ASSERT_EQ(steps.size(), 3u);
  EXPECT_EQ(steps[1].from_s, 60);
  EXPECT_EQ(steps[1].rate, 20);
  EXPECT_FALSE(parse_rate_schedule("5:2", steps, why));
  EXPECT_NE(why.find("starts at 0"), std::string::npos) << why;
  EXPECT_FALSE(parse_rate_schedule("0:2,10:x", steps, why));
  EXPECT_NE(why.find("'10:x'"), std::string::npos) << why;
  EXPECT_FALSE(parse_rate_schedule("0:2,10:3,10:4", steps, why));
  EXPECT_NE(why.find("times must increase"), std::string::npos) << why;
  EXPECT_FALSE(parse_rate_schedule("0:0", steps, why));
  EXPECT_FALSE(parse_rate_schedule("0:-1", steps, why));

  ASSERT_TRUE(parse_rate_schedule("0:10,20:100,40:0", steps, why)) << why;
  const std::vector<double> t = scheduled_arrivals(100000, steps, 7);
  int64_t first = 0, second = 0;
  for (size_t i = 0; i < t.size(); ++i) {
    if (i) {
      EXPECT_GE(t[i], t[i - 1]);
    }
    EXPECT_LT(t[i], 40.0) << "none after the rate-0 piece begins";
    (t[i] < 20 ? first : second) += 1;
  }
  // Poisson counts: 200 +- 3 sigma (~42) and 2000 +- ~134.
  EXPECT_NEAR(double(first), 200, 45);
  EXPECT_NEAR(double(second), 2000, 140);
  EXPECT_EQ(scheduled_arrivals(50, steps, 7).size(), 50u) << "n still bounds the arrivals";
  EXPECT_EQ(scheduled_arrivals(50, steps, 7), scheduled_arrivals(50, steps, 7)) << "reproducible for a seed";
}

}  // namespace
}  // namespace troupe::bench
