// Reporting metrics: the per-class table (as the reference test script prints it), metrics.json,
// and the precision–recall curve as a PNG.
#pragma once
#include <cstdio>
#include <ostream>

#include "pdyolo/data/image_io.hpp"
#include "pdyolo/eval/metrics.hpp"
#include "pdyolo/io/json.hpp"
#include "pdyolo/viz/plot.hpp"

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
  constexpr int kPoints = 1000;  // the curves are sampled at 1000 recall values from 0 to 1
  std::vector<viz::PlotSeries> series;
  viz::PlotSeries mean{"mean of classes", {}, std::vector<double>(kPoints, 0.0), {30, 90, 220}, 3};
  for (int i = 0; i < kPoints; ++i) mean.x.push_back(i / (kPoints - 1.0));
  for (const ClassMetrics& c : m.classes) {
    viz::PlotSeries one{series.empty() ? "one class" : "", mean.x, {}, {170, 170, 170}, 1};
    for (int i = 0; i < kPoints; ++i) {
      one.y.push_back(c.pr_curve[i]);
      mean.y[i] += c.pr_curve[i] / static_cast<double>(m.classes.size());
    }
    series.push_back(std::move(one));
  }
  series.push_back(std::move(mean));
  viz::PlotOptions o;
  char title[96];
  std::snprintf(title, sizeof title, "Precision-recall at IoU 0.5: all classes %.3f mAP@0.5", m.map50);
  o.title = title;
  o.x_label = "Recall";
  o.y_label = "Precision";
  o.width = 900, o.height = 640, o.text_scale = 2;
  o.x_lo = 0, o.x_hi = 1, o.y_lo = 0, o.y_hi = 1, o.x_ticks = 5, o.y_ticks = 5;
  return viz::plot_lines(o, series);
}

}  // namespace pdyolo::eval
