// Line charts as images (saved as PNG by data::save_image): the training curves, the
// precision–recall curve, and whatever else is better looked at than read. One chart drawer:
// axes with a light grid and tick labels, any number of series (x, y points), a legend.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "pdyolo/viz/draw.hpp"

namespace pdyolo::viz {

struct PlotSeries {
  std::string name;        // legend entry ("" for none)
  std::vector<double> x, y;
  Color color{30, 90, 220};
  int width = 2;
};

struct PlotOptions {
  std::string title, x_label, y_label;
  int64_t width = 640, height = 400;
  // Axis ranges; when lo ≥ hi the range is fitted to the data (with 5 % margins).
  double x_lo = 0, x_hi = 0, y_lo = 0, y_hi = 0;
  int x_ticks = 4, y_ticks = 4;
  int text_scale = 1;  // 2 for large figures
};

namespace detail {
inline void fit_range(double& lo, double& hi, const std::vector<PlotSeries>& series, bool x_axis) {
  if (lo < hi) return;
  lo = 1e300, hi = -1e300;
  for (const PlotSeries& s : series)
    for (double v : x_axis ? s.x : s.y) lo = std::min(lo, v), hi = std::max(hi, v);
  if (lo > hi) lo = 0, hi = 1;  // no data
  if (hi <= lo) {  // one value: centre it
    const double d = lo != 0 ? std::fabs(lo) * 0.1 : 0.5;
    lo -= d, hi += d;
  }
  const double pad = x_axis ? 0.0 : (hi - lo) * 0.05;
  lo -= pad, hi += pad;
}
}  // namespace detail

inline data::Image plot_lines(const PlotOptions& o, const std::vector<PlotSeries>& series) {
  const int64_t W = o.width, H = o.height, scale = o.text_scale;
  const int64_t left = 40 + 30 * scale, right = 20, top = 30 + 15 * scale, bottom = 35 + 15 * scale;
  data::Image img(W, H, 255);
  double x_lo = o.x_lo, x_hi = o.x_hi, y_lo = o.y_lo, y_hi = o.y_hi;
  detail::fit_range(x_lo, x_hi, series, true);
  detail::fit_range(y_lo, y_hi, series, false);
  auto px = [&](double x) { return left + (x - x_lo) / (x_hi - x_lo) * static_cast<double>(W - left - right); };
  auto py = [&](double y) { return top + (y_hi - y) / (y_hi - y_lo) * static_cast<double>(H - top - bottom); };
  const Color axis{40, 40, 40}, grid{225, 225, 225};
  char label[32];
  for (int t = 0; t <= o.y_ticks; ++t) {
    const double v = y_lo + (y_hi - y_lo) * t / o.y_ticks;
    draw_line(img, px(x_lo), py(v), px(x_hi), py(v), grid);
    std::snprintf(label, sizeof label, "%.3g", v);
    draw_text(img, 4, static_cast<int64_t>(py(v)) - 4 * scale, label, axis, static_cast<int>(scale));
  }
  for (int t = 0; t <= o.x_ticks; ++t) {
    const double v = x_lo + (x_hi - x_lo) * t / o.x_ticks;
    draw_line(img, px(v), py(y_lo), px(v), py(y_hi), grid);
    std::snprintf(label, sizeof label, "%.3g", v);
    draw_text(img, static_cast<int64_t>(px(v)) - 6 * scale, static_cast<int64_t>(py(y_lo)) + 6, label, axis, static_cast<int>(scale));
  }
  for (const PlotSeries& s : series) {
    const size_t n = std::min(s.x.size(), s.y.size());
    for (size_t i = 1; i < n; ++i) draw_line(img, px(s.x[i - 1]), py(s.y[i - 1]), px(s.x[i]), py(s.y[i]), s.color, s.width);
    if (n == 1) {  // a single point: a small square
      const int64_t cx = static_cast<int64_t>(px(s.x[0])), cy = static_cast<int64_t>(py(s.y[0]));
      fill_rect(img, cx - 2, cy - 2, cx + 3, cy + 3, s.color);
    }
  }
  draw_rect(img, px(x_lo), py(y_hi), px(x_hi), py(y_lo), axis, 1);
  draw_text(img, left, 8, o.title, axis, 2);
  draw_text(img, W / 2 - static_cast<int64_t>(o.x_label.size()) * 4 * scale, H - 14 * scale - 4, o.x_label, axis, static_cast<int>(scale));
  if (!o.y_label.empty()) draw_text(img, 4, top - 12 * scale, o.y_label, axis, static_cast<int>(scale));
  int64_t legend_width = 0, legend_y = top + 8;
  for (const PlotSeries& s : series) legend_width = std::max(legend_width, viz::text_width(s.name, static_cast<int>(scale)));
  const int64_t legend_x = W - right - 8 - legend_width - 32;
  for (const PlotSeries& s : series) {
    if (s.name.empty()) continue;
    draw_line(img, legend_x, legend_y + 4 * scale, legend_x + 25, legend_y + 4 * scale, s.color, s.width);
    draw_text(img, legend_x + 32, legend_y, s.name, axis, static_cast<int>(scale));
    legend_y += 10 + 8 * scale;
  }
  return img;
}

}  // namespace pdyolo::viz
