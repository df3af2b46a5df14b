// Reporting metrics: the per-class table (as the reference test script prints it), metrics.json,
// and the precision–recall curve as a PNG.
#pragma once
#include <cstdio>
#include <ostream>

#include "pdyolo/data/draw.hpp"
#include "pdyolo/data/image_io.hpp"
#include "pdyolo/eval/metrics.hpp"
#include "pdyolo/io/json.hpp"

namespace pdyolo::eval {

inline std::string class_name(const std::vector<std::string>& names, int64_t cls) {
  return cls >= 0 && cls < static_cast<int64_t>(names.size()) ? names[cls] : "class" + std::to_string(cls);
}

inline void print_class_table(std::ostream& os, const Metrics& m, const std::vector<std::string>& names, bool per_class = true) {
  char line[160];
  std::snprintf(line, sizeof line, "%20s%12s%12s%12s%12s%12s%12s\n", "Class", "Images", "Labels", "P", "R", "mAP@.5", "mAP@.5:.95");
  os << line;
  std::snprintf(line, sizeof line, "%20s%12lld%12lld%12.3g%12.3g%12.3g%12.3g\n", "all", static_cast<long long>(m.images),
                static_cast<long long>(m.labels), m.precision, m.recall, m.map50, m.map50_95);
  os << line;
  if (!per_class) return;
  for (const ClassMetrics& c : m.classes) {
    std::snprintf(line, sizeof line, "%20s%12lld%12lld%12.3g%12.3g%12.3g%12.3g\n", class_name(names, c.cls).substr(0, 20).c_str(),
                  static_cast<long long>(m.images), static_cast<long long>(c.labels), c.precision, c.recall, c.ap50, c.ap50_95);
    os << line;
  }
}

inline std::string metrics_json(const Metrics& m, const std::vector<std::string>& names, const std::string& protocol) {
  auto num = [](double v) { return io::to_json(io::Value::make_real(v)); };
  std::string s = "{\"protocol\":" + io::json_quote(protocol) + ",\"images\":" + std::to_string(m.images) +
                  ",\"labels\":" + std::to_string(m.labels) + ",\"precision\":" + num(m.precision) + ",\"recall\":" + num(m.recall) +
                  ",\"map50\":" + num(m.map50) + ",\"map50_95\":" + num(m.map50_95) + ",\"classes\":[";
  for (size_t i = 0; i < m.classes.size(); ++i) {
    const ClassMetrics& c = m.classes[i];
    s += (i ? "," : "") + std::string("{\"class\":") + std::to_string(c.cls) + ",\"name\":" + io::json_quote(class_name(names, c.cls)) +
         ",\"labels\":" + std::to_string(c.labels) + ",\"predictions\":" + std::to_string(c.predictions) + ",\"precision\":" +
         num(c.precision) + ",\"recall\":" + num(c.recall) + ",\"f1\":" + num(c.f1) + ",\"ap50\":" + num(c.ap50) +
         ",\"ap50_95\":" + num(c.ap50_95) + "}";
  }
  return s + "]}";
}

// Precision against recall at IoU 0.5: every class in grey, their mean in blue.
inline data::Image plot_pr_curve(const Metrics& m) {
  const int64_t W = 900, H = 640, left = 80, right = 30, top = 60, bottom = 70;
  data::Image img(W, H, 255);
  const double pw = W - left - right, ph = H - top - bottom;
  auto px = [&](double r) { return left + r * pw; };
  auto py = [&](double p) { return top + (1.0 - p) * ph; };
  const data::Color axis{40, 40, 40}, grid{225, 225, 225}, grey{170, 170, 170}, blue{30, 90, 220};
  for (int t = 0; t <= 5; ++t) {
    const double v = t / 5.0;
    data::draw_line(img, px(v), py(0), px(v), py(1), grid);
    data::draw_line(img, px(0), py(v), px(1), py(v), grid);
    char label[8];
    std::snprintf(label, sizeof label, "%.1f", v);
    data::draw_text(img, static_cast<int64_t>(px(v)) - 12, static_cast<int64_t>(py(0)) + 10, label, axis, 2);
    data::draw_text(img, left - 50, static_cast<int64_t>(py(v)) - 10, label, axis, 2);
  }
  std::vector<double> mean(1000, 0.0);
  for (const ClassMetrics& c : m.classes) {
    for (int i = 1; i < 1000; ++i) data::draw_line(img, px((i - 1) / 999.0), py(c.pr_curve[i - 1]), px(i / 999.0), py(c.pr_curve[i]), grey);
    for (int i = 0; i < 1000; ++i) mean[i] += c.pr_curve[i] / static_cast<double>(m.classes.size());
  }
  for (int i = 1; i < 1000; ++i) data::draw_line(img, px((i - 1) / 999.0), py(mean[i - 1]), px(i / 999.0), py(mean[i]), blue, 3);
  data::draw_rect(img, px(0), py(1), px(1), py(0), axis, 2);
  char title[96];
  std::snprintf(title, sizeof title, "Precision-recall at IoU 0.5: all classes %.3f mAP@0.5", m.map50);
  data::draw_text(img, left, 6, title, axis, 2);
  data::draw_text(img, static_cast<int64_t>(px(0.5)) - 30, H - 32, "Recall", axis, 2);
  data::draw_text(img, 8, top - 24, "Precision", axis, 2);
  data::draw_line(img, W - 260, top + 24, W - 230, top + 24, blue, 3);
  data::draw_text(img, W - 222, top + 14, "mean of classes", axis, 2);
  data::draw_line(img, W - 260, top + 50, W - 230, top + 50, grey);
  data::draw_text(img, W - 222, top + 40, "one class", axis, 2);
  return img;
}

}  // namespace pdyolo::eval
