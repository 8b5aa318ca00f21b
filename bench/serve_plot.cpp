// The SVG of `troupe bench serve --plot`: four panels (TTFT, TPOT and E2E CDFs, throughput over
// time), each with axes and tick labels, written by hand (see serve_plot.hpp).
#include "bench/serve_plot.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "bench/serve_report.hpp"

namespace troupe::bench {

namespace {

constexpr double panel_w = 480, panel_h = 340;
constexpr double margin_l = 70, margin_r = 20, margin_t = 36, margin_b = 48;

std::string num(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", x);
  return buf;
}

// A tick label with the fewest decimals that show the step exactly (0.25 -> "0.25", 0.5 -> "0.5").
std::string label(double x, double step) {
  int decimals = 0;
  for (double scaled = step; decimals < 6 && std::abs(scaled - std::round(scaled)) > 1e-6 * scaled; scaled *= 10)
    ++decimals;
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, std::abs(x) < 1e-12 ? 0.0 : x);
  return buf;
}

std::string escape(const std::string& s) {
  std::string out;
  for (const char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

// One panel's frame: origin at (x0, y0) of the whole image, data ranges [x_min, x_max] x [0, y_max].
struct panel {
  double x0, y0, x_min, x_max, y_max;
  [[nodiscard]] double px(double x) const {
    return x0 + margin_l + (x - x_min) / (x_max - x_min) * (panel_w - margin_l - margin_r);
  }
  [[nodiscard]] double py(double y) const {
    return y0 + panel_h - margin_b - y / y_max * (panel_h - margin_t - margin_b);
  }
};

// The frame, grid, tick labels and titles; returns the panel for plotting into.
panel draw_axes(std::string& svg, double x0, double y0, const std::vector<double>& xt,
                const std::vector<double>& yt, const std::string& title, const std::string& x_name,
                const std::string& y_name) {
  const panel p{x0, y0, xt.front(), xt.back(), yt.back()};
  const double left = p.px(p.x_min), right = p.px(p.x_max), bottom = p.py(0), upper = p.py(p.y_max);
  svg += "<g>\n<text x=\"" + num((left + right) / 2) + "\" y=\"" + num(y0 + 22) +
         "\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">" + escape(title) + "</text>\n";
  const double x_step = xt.size() > 1 ? xt[1] - xt[0] : 1, y_step = yt.size() > 1 ? yt[1] - yt[0] : 1;
  for (const double t : xt) {
    svg += "<line x1=\"" + num(p.px(t)) + "\" y1=\"" + num(bottom) + "\" x2=\"" + num(p.px(t)) + "\" y2=\"" +
           num(upper) + "\" stroke=\"#e4e4e4\"/>\n";
    svg += "<text x=\"" + num(p.px(t)) + "\" y=\"" + num(bottom + 16) + "\" text-anchor=\"middle\">" +
           label(t, x_step) + "</text>\n";
  }
  for (const double t : yt) {
    svg += "<line x1=\"" + num(left) + "\" y1=\"" + num(p.py(t)) + "\" x2=\"" + num(right) + "\" y2=\"" +
           num(p.py(t)) + "\" stroke=\"#e4e4e4\"/>\n";
    svg += "<text x=\"" + num(left - 6) + "\" y=\"" + num(p.py(t) + 4) + "\" text-anchor=\"end\">" +
           label(t, y_step) + "</text>\n";
  }
  svg += "<rect x=\"" + num(left) + "\" y=\"" + num(upper) + "\" width=\"" + num(right - left) + "\" height=\"" +
         num(bottom - upper) + "\" fill=\"none\" stroke=\"#333\"/>\n";
  svg += "<text x=\"" + num((left + right) / 2) + "\" y=\"" + num(bottom + 36) + "\" text-anchor=\"middle\">" +
         escape(x_name) + "</text>\n";
  svg += "<text transform=\"translate(" + num(x0 + 18) + " " + num((bottom + upper) / 2) +
         ") rotate(-90)\" text-anchor=\"middle\">" + escape(y_name) + "</text>\n</g>\n";
  return p;
}

void no_data(std::string& svg, const panel& p) {
  svg += "<text x=\"" + num(p.px((p.x_min + p.x_max) / 2)) + "\" y=\"" + num(p.py(p.y_max / 2)) +
         "\" text-anchor=\"middle\" fill=\"#888\">no data</text>\n";
}

// The empirical CDF of `seconds` (shown in ms) as a step line, thinned to at most ~1000 steps.
void cdf_panel(std::string& svg, double x0, double y0, const std::string& title, std::vector<double> seconds,
               const char* color) {
  for (double& s : seconds) s *= 1e3;
  std::sort(seconds.begin(), seconds.end());
  // The axis starts at 0 unless the values sit far from it (then 0 would squash them to a line).
  const double x_max = seconds.empty() ? 1 : seconds.back();
  const double x_min = seconds.empty() || seconds.front() < 0.25 * x_max ? 0 : seconds.front();
  const panel p = draw_axes(svg, x0, y0, axis_ticks(x_min, x_max), {0, 0.25, 0.5, 0.75, 1.0}, title, "ms",
                            "fraction of requests");
  if (seconds.empty()) return no_data(svg, p);
  const size_t n = seconds.size(), stride = std::max<size_t>(1, n / 1000);
  std::string pts;
  const auto point = [&pts, &p](double x, double y) {
    if (!pts.empty()) pts += ' ';
    pts += num(p.px(x));
    pts += ',';
    pts += num(p.py(y));
  };
  point(seconds[0], 0);
  for (size_t i = 0; i < n; i += stride) {
    const size_t last = std::min(n, i + stride) - 1;  // the step up to the end of this stride
    point(seconds[i], double(i) / double(n));
    point(seconds[last], double(last + 1) / double(n));
  }
  svg += "<polyline fill=\"none\" stroke=\"" + std::string(color) + "\" stroke-width=\"2\" points=\"" + pts +
         "\"/>\n";
}

void throughput_panel(std::string& svg, double x0, double y0, const std::vector<request_result>& results) {
  std::vector<double> buckets;  // output tokens in each second since the start
  double end_s = 0;             // the last completion
  for (const request_result& r : results) end_s = std::max(end_s, r.start_s + r.e2e_s);
  const auto add = [&buckets](double t, double tokens) {
    const size_t b = size_t(std::max(0.0, t));
    if (b >= buckets.size()) buckets.resize(b + 1, 0);
    buckets[b] += tokens;
  };
  for (const request_result& r : results) {
    for (const double t : r.chunk_times_s) add(r.start_s + t, 1);
    const int64_t surplus = r.output_tokens - int64_t(r.chunk_times_s.size());
    if (r.success && surplus > 0) add(r.start_s + (r.chunk_times_s.empty() ? r.e2e_s : r.chunk_times_s.back()), double(surplus));
  }
  const double y_max = buckets.empty() ? 1 : std::max(1.0, *std::max_element(buckets.begin(), buckets.end()));
  // The last bucket ends with the run: its rate is over the part of the second it covers.
  const double last_width = std::clamp(end_s - std::floor(end_s), 0.05, 1.0);
  if (!buckets.empty() && end_s < double(buckets.size())) buckets.back() /= last_width;
  const panel p = draw_axes(svg, x0, y0, axis_ticks(0, std::max(1.0, end_s)), axis_ticks(0, y_max),
                            "Output throughput", "time since start (s)", "output tokens/s (1 s buckets)");
  if (buckets.empty()) return no_data(svg, p);
  for (size_t b = 0; b < buckets.size(); ++b) {
    if (buckets[b] <= 0) continue;
    const double right = b + 1 == buckets.size() ? std::min(double(b + 1), double(b) + last_width) : double(b + 1);
    svg += "<rect x=\"" + num(p.px(double(b))) + "\" y=\"" + num(p.py(buckets[b])) + "\" width=\"" +
           num(std::max(0.5, p.px(right) - p.px(double(b)) - 1)) + "\" height=\"" +
           num(p.py(0) - p.py(buckets[b])) + "\" fill=\"#4c72b0\"/>\n";
  }
}

// The server's replicas over time, as a step line.
void replicas_panel(std::string& svg, double x0, double y0, const std::vector<replica_sample>& replicas, double end_s) {
  double most = 1;
  for (const auto& r : replicas) most = std::max(most, r.replicas), end_s = std::max(end_s, r.t_s);
  const panel p = draw_axes(svg, x0, y0, axis_ticks(0, std::max(1.0, end_s)), axis_ticks(0, most + 1), "Replicas",
                            "time since start (s)", "shard groups (server /metrics)");
  std::string pts;
  const auto point = [&pts, &p](double t, double n) {
    if (!pts.empty()) pts += ' ';
    pts += num(p.px(t));
    pts += ',';
    pts += num(p.py(n));
  };
  for (size_t i = 0; i < replicas.size(); ++i) {
    if (i) point(replicas[i].t_s, replicas[i - 1].replicas);  // a step: level until the next sample
    point(replicas[i].t_s, replicas[i].replicas);
  }
  svg += "<polyline fill=\"none\" stroke=\"#c44e52\" stroke-width=\"2\" points=\"" + pts + "\"/>\n";
}

// Each successful request's TTFT (ms) at its send time: latency over time.
void ttft_time_panel(std::string& svg, double x0, double y0, const std::vector<request_result>& results, double end_s) {
  double most = 1;
  for (const auto& r : results)
    if (r.success && !r.chunk_times_s.empty()) most = std::max(most, r.chunk_times_s.front() * 1e3);
  const panel p = draw_axes(svg, x0, y0, axis_ticks(0, std::max(1.0, end_s)), axis_ticks(0, most),
                            "TTFT over time", "send time since start (s)", "TTFT (ms)");
  for (const auto& r : results) {
    if (!r.success || r.chunk_times_s.empty()) continue;
    svg += "<circle cx=\"" + num(p.px(r.start_s)) + "\" cy=\"" + num(p.py(r.chunk_times_s.front() * 1e3)) +
           "\" r=\"1.5\" fill=\"#8172b2\"/>\n";
  }
}

}  // namespace

std::vector<double> axis_ticks(double min, double max) {
  if (!std::isfinite(min) || !std::isfinite(max) || min < 0) min = 0;
  if (!std::isfinite(max) || max <= min) max = min + 1;
  const double raw = (max - min) / 5;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  const double unit = raw / mag;
  const double step = (unit <= 1 ? 1 : unit <= 2 ? 2 : unit <= 5 ? 5 : 10) * mag;
  const double first = std::floor(min / step + 1e-9);
  std::vector<double> ticks;
  for (int i = 0;; ++i) {
    ticks.push_back((first + i) * step);
    if (ticks.back() >= max - 1e-9 * std::abs(max)) break;
  }
  if (ticks.size() < 2) ticks.push_back(ticks.back() + step);
  return ticks;
}

std::string render_svg(const std::vector<request_result>& results, const std::string& caption,
                       const std::vector<replica_sample>& replicas) {
  // The caption wraps at spaces into lines of at most ~120 characters.
  std::vector<std::string> lines{""};
  size_t from = 0;
  while (from < caption.size()) {
    size_t to = caption.find(' ', from);
    if (to == std::string::npos) to = caption.size();
    const std::string word = caption.substr(from, to - from);
    if (!lines.back().empty() && lines.back().size() + 1 + word.size() > 120) lines.emplace_back();
    lines.back() += (lines.back().empty() ? "" : " ") + word;
    from = to + 1;
  }
  const double top = 16 + 18 * double(lines.size());
  const double width = 2 * panel_w, height = top + (replicas.empty() ? 2 : 3) * panel_h;
  std::string svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" + num(width) + "\" height=\"" +
                    num(height) + "\" viewBox=\"0 0 " + num(width) + " " + num(height) +
                    "\" font-family=\"sans-serif\" font-size=\"12\">\n";
  svg += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  for (size_t i = 0; i < lines.size(); ++i)
    svg += "<text x=\"" + num(width / 2) + "\" y=\"" + num(22 + 18 * double(i)) +
           "\" text-anchor=\"middle\" font-size=\"14\">" + escape(lines[i]) + "</text>\n";
  latency_samples s = samples_of(results);
  cdf_panel(svg, 0, top, "TTFT CDF", std::move(s.ttft), "#4c72b0");
  cdf_panel(svg, panel_w, top, "TPOT CDF", std::move(s.tpot), "#dd8452");
  cdf_panel(svg, 0, top + panel_h, "E2E latency CDF", std::move(s.e2e), "#55a868");
  throughput_panel(svg, panel_w, top + panel_h, results);
  if (!replicas.empty()) {
    double end_s = 0;
    for (const request_result& r : results) end_s = std::max(end_s, r.start_s + r.e2e_s);
    replicas_panel(svg, 0, top + 2 * panel_h, replicas, end_s);
    ttft_time_panel(svg, panel_w, top + 2 * panel_h, results, end_s);
  }
  return svg + "</svg>\n";
}

}  // namespace troupe::bench
