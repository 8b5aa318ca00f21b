// Tests of the Prometheus metrics registry: the exact text exposition format (counters with labels,
// gauges, cumulative histograms, escaping), series identity, misuse errors and concurrent updates.
#include "common/metrics.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>
#include <thread>
#include <vector>

namespace troupe {
namespace {

TEST(metrics, counter_with_labels_renders_exactly) {
  metrics_registry registry;
  registry.counter("troupe_requests_total", "Requests received.", {{"model", "tiny"}, {"code", "200"}}).inc();
  registry.counter("troupe_requests_total", "Requests received.", {{"model", "tiny"}, {"code", "200"}}).inc(2);
  registry.counter("troupe_requests_total", "Requests received.", {{"model", "tiny"}, {"code", "400"}}).inc(0.5);
  EXPECT_EQ(registry.render(),
            "# HELP troupe_requests_total Requests received.\n"
            "# TYPE troupe_requests_total counter\n"
            "troupe_requests_total{model=\"tiny\",code=\"200\"} 3\n"
            "troupe_requests_total{model=\"tiny\",code=\"400\"} 0.5\n");
}

TEST(metrics, same_family_and_labels_is_the_same_series) {
  metrics_registry registry;
  counter& a = registry.counter("c_total", "c", {{"x", "1"}, {"y", "2"}});
  counter& b = registry.counter("c_total", "c", {{"y", "2"}, {"x", "1"}});  // label order is free
  counter& other = registry.counter("c_total", "c", {{"x", "1"}, {"y", "3"}});
  EXPECT_EQ(&a, &b);
  EXPECT_NE(&a, &other);
  a.inc(5);
  EXPECT_EQ(b.value(), 5);
  EXPECT_EQ(other.value(), 0);
}

TEST(metrics, gauge_without_labels_renders_exactly) {
  metrics_registry registry;
  gauge& g = registry.gauge("troupe_shard_groups", "Live shard groups.");
  g.set(3);
  g.add(-1.25);
  EXPECT_EQ(g.value(), 1.75);
  EXPECT_EQ(registry.render(),
            "# HELP troupe_shard_groups Live shard groups.\n"
            "# TYPE troupe_shard_groups gauge\n"
            "troupe_shard_groups 1.75\n");
}

TEST(metrics, histogram_buckets_are_cumulative_with_sum_and_count) {
  metrics_registry registry;
  histogram& h = registry.histogram("troupe_ttft_seconds", "Time to first token.", {0.125, 0.5, 1},
                                    {{"model", "tiny"}});
  for (const double v : {0.0625, 0.125, 0.25, 0.75, 2.0, 4.0}) h.observe(v);  // le is inclusive
  h.observe(std::nan(""));  // dropped
  EXPECT_EQ(h.count(), 6u);
  EXPECT_EQ(registry.render(),
            "# HELP troupe_ttft_seconds Time to first token.\n"
            "# TYPE troupe_ttft_seconds histogram\n"
            "troupe_ttft_seconds_bucket{model=\"tiny\",le=\"0.125\"} 2\n"
            "troupe_ttft_seconds_bucket{model=\"tiny\",le=\"0.5\"} 3\n"
            "troupe_ttft_seconds_bucket{model=\"tiny\",le=\"1\"} 4\n"
            "troupe_ttft_seconds_bucket{model=\"tiny\",le=\"+Inf\"} 6\n"
            "troupe_ttft_seconds_sum{model=\"tiny\"} 7.1875\n"
            "troupe_ttft_seconds_count{model=\"tiny\"} 6\n");
}

TEST(metrics, histogram_without_labels_and_empty) {
  metrics_registry registry;
  (void)registry.histogram("e2e_seconds", "E2E.", {0.001, 0.0025});
  EXPECT_EQ(registry.render(),
            "# HELP e2e_seconds E2E.\n"
            "# TYPE e2e_seconds histogram\n"
            "e2e_seconds_bucket{le=\"0.001\"} 0\n"
            "e2e_seconds_bucket{le=\"0.0025\"} 0\n"
            "e2e_seconds_bucket{le=\"+Inf\"} 0\n"
            "e2e_seconds_sum 0\n"
            "e2e_seconds_count 0\n");
}

TEST(metrics, families_render_in_name_order_series_in_label_order) {
  metrics_registry registry;
  registry.gauge("b", "B.", {{"k", "z"}}).set(1);
  registry.gauge("b", "B.", {{"k", "a"}}).set(2);
  registry.counter("a_total", "A.").inc(1e20);  // beyond the integer form: shortest round-trip
  EXPECT_EQ(registry.render(),
            "# HELP a_total A.\n# TYPE a_total counter\na_total 1e+20\n"
            "# HELP b B.\n# TYPE b gauge\nb{k=\"a\"} 2\nb{k=\"z\"} 1\n");
}

TEST(metrics, label_values_and_help_are_escaped) {
  metrics_registry registry;
  registry.counter("esc_total", "Back\\slash and\nnewline \"quoted\".", {{"path", "a\\b\"c\"\nd"}}).inc();
  EXPECT_EQ(registry.render(),
            "# HELP esc_total Back\\\\slash and\\nnewline \"quoted\".\n"
            "# TYPE esc_total counter\n"
            "esc_total{path=\"a\\\\b\\\"c\\\"\\nd\"} 1\n");
}

TEST(metrics, special_values) {
  metrics_registry registry;
  registry.gauge("g_inf", "g").set(INFINITY);
  registry.gauge("g_nan", "g").set(std::nan(""));
  registry.gauge("g_neg", "g").set(-2);
  EXPECT_EQ(registry.render(),
            "# HELP g_inf g\n# TYPE g_inf gauge\ng_inf +Inf\n"
            "# HELP g_nan g\n# TYPE g_nan gauge\ng_nan NaN\n"
            "# HELP g_neg g\n# TYPE g_neg gauge\ng_neg -2\n");
}

TEST(metrics, misuse_throws) {
  metrics_registry registry;
  (void)registry.counter("x_total", "X.", {{"a", "1"}});
  EXPECT_THROW((void)registry.gauge("x_total", "X."), std::invalid_argument);                // type
  EXPECT_THROW((void)registry.counter("x_total", "Other."), std::invalid_argument);          // help
  EXPECT_THROW((void)registry.counter("x_total", "X."), std::invalid_argument);              // labels
  EXPECT_THROW((void)registry.counter("x_total", "X.", {{"b", "1"}}), std::invalid_argument);
  EXPECT_THROW((void)registry.counter("1bad", "B."), std::invalid_argument);
  EXPECT_THROW((void)registry.counter("bad-name", "B."), std::invalid_argument);
  EXPECT_THROW((void)registry.counter("ok", "B.", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW((void)registry.counter("ok", "B.", {{"a", "1"}, {"a", "2"}}), std::invalid_argument);
  EXPECT_THROW((void)registry.histogram("h", "H.", {1, 1}), std::invalid_argument);
  EXPECT_THROW((void)registry.histogram("h", "H.", {1, INFINITY}), std::invalid_argument);
  EXPECT_THROW((void)registry.histogram("h", "H.", {1}, {{"le", "1"}}), std::invalid_argument);
  (void)registry.histogram("h", "H.", {1, 2});
  EXPECT_THROW((void)registry.histogram("h", "H.", {1, 3}), std::invalid_argument);
  // The failed registrations left nothing behind.
  EXPECT_EQ(registry.render().find("ok"), std::string::npos);
}

TEST(metrics, latency_buckets_span_1ms_to_60s) {
  const std::vector<double> b = latency_seconds_buckets();
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b.front(), 0.001);
  EXPECT_EQ(b.back(), 60);
  for (size_t i = 1; i < b.size(); ++i) EXPECT_LT(b[i - 1], b[i]);
  EXPECT_EQ(exponential_buckets(1, 2, 4), (std::vector<double>{1, 2, 4, 8}));
}

TEST(metrics, concurrent_updates_sum_exactly) {
  metrics_registry registry;
  constexpr int threads = 8;
  constexpr int per_thread = 20000;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&registry, t] {
      // Each thread also looks the series up itself, racing on series creation.
      counter& c = registry.counter("hits_total", "Hits.", {{"shard", "0"}});
      gauge& g = registry.gauge("inflight", "In flight.");
      histogram& h = registry.histogram("lat_seconds", "Latency.", latency_seconds_buckets());
      for (int i = 0; i < per_thread; ++i) {
        c.inc();
        g.add(1);
        g.add(-1);
        h.observe(0.002 * (t + 1));
        if (i % 5000 == 0) (void)registry.render();  // scrapes while updating
      }
    });
  }
  for (std::thread& w : workers) w.join();
  EXPECT_EQ(registry.counter("hits_total", "Hits.", {{"shard", "0"}}).value(), threads * per_thread);
  EXPECT_EQ(registry.gauge("inflight", "In flight.").value(), 0);
  const histogram& h = registry.histogram("lat_seconds", "Latency.", latency_seconds_buckets());
  EXPECT_EQ(h.count(), static_cast<uint64_t>(threads) * per_thread);
  EXPECT_NE(registry.render().find("hits_total{shard=\"0\"} 160000\n"), std::string::npos);
}

}  // namespace
}  // namespace troupe
