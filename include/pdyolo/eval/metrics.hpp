// Detection metrics. Matching follows the reference test script: per image and class, predictions
// in descending confidence each take the ground-truth box they overlap most; a box already taken
// leaves the prediction unmatched; the match made at IoU 0.5 is then checked against every IoU
// threshold 0.50:0.05:0.95. VOC "difficult" boxes do not count as labels, and predictions that
// match one are ignored. AP per class and threshold uses the chosen protocol's interpolation:
//   coco   the reference's 101-point interpolation (trapezoidal integral), as its mAP figures
//   voc07  11-point interpolated AP (VOC2007 devkit)
//   voc12  all-point AP: area under the precision envelope (VOC2010+ devkit)
// Precision, recall and F1 are read at the confidence that maximises the mean F1, as the reference.
#pragma once
#include <array>
#include <cmath>
#include <map>
#include <string>

#include "pdyolo/data/dataset.hpp"
#include "pdyolo/eval/nms.hpp"

namespace pdyolo::eval {

enum class Protocol { coco, voc07, voc12 };

inline Protocol parse_protocol(const std::string& s) {
  if (s == "coco") return Protocol::coco;
  if (s == "voc07") return Protocol::voc07;
  if (s == "voc12") return Protocol::voc12;
  throw_error("unknown protocol '", s, "' (expected coco, voc07 or voc12)");
}

constexpr int kIouThresholds = 10;  // 0.50, 0.55, …, 0.95
inline float iou_threshold(int k) { return 0.5f + 0.05f * static_cast<float>(k); }

struct ClassMetrics {
  int64_t cls = 0;
  int64_t labels = 0, predictions = 0;
  double precision = 0, recall = 0, f1 = 0;
  double ap50 = 0, ap50_95 = 0;
  std::vector<float> pr_curve;  // precision envelope at recall 0, 0.001, …, 1 (IoU 0.5), for plots
};

struct Metrics {
  double precision = 0, recall = 0, map50 = 0, map50_95 = 0;
  int64_t images = 0, labels = 0;
  std::vector<ClassMetrics> classes;  // the classes that have labels
};

// The reference train.py's fitness, by which it keeps its best epoch: 0.1·mAP@.5 + 0.9·mAP@.5:.95.
inline double fitness(const Metrics& m) { return 0.1 * m.map50 + 0.9 * m.map50_95; }

namespace detail {

// Linear interpolation of (xs → ys) at x, xs increasing; clamps like numpy.interp.
inline double interp(double x, const std::vector<double>& xs, const std::vector<double>& ys, double left, double right) {
  if (xs.empty()) return left;
  if (x < xs.front()) return left;
  if (x > xs.back()) return right;
  const size_t hi = static_cast<size_t>(std::upper_bound(xs.begin(), xs.end(), x) - xs.begin());
  if (hi == 0) return ys.front();
  if (hi >= xs.size()) return ys.back();
  const double x0 = xs[hi - 1], x1 = xs[hi];
  return x1 == x0 ? ys[hi] : ys[hi - 1] + (ys[hi] - ys[hi - 1]) * (x - x0) / (x1 - x0);
}

// AP from cumulative recall/precision (detections sorted by confidence).
inline double average_precision(const std::vector<double>& recall, const std::vector<double>& precision, Protocol protocol,
                                std::vector<float>* curve = nullptr) {
  if (protocol == Protocol::voc07) {
    double ap = 0;
    for (int t = 0; t <= 10; ++t) {
      double p = 0;
      for (size_t i = 0; i < recall.size(); ++i)
        if (recall[i] >= t / 10.0) p = std::max(p, precision[i]);
      ap += p / 11.0;
    }
    return ap;
  }
  // Envelope with the reference's sentinels (coco) or the devkit's (voc12).
  std::vector<double> mrec{0.0}, mpre{protocol == Protocol::coco ? 1.0 : 0.0};
  mrec.insert(mrec.end(), recall.begin(), recall.end());
  mpre.insert(mpre.end(), precision.begin(), precision.end());
  mrec.push_back(protocol == Protocol::coco ? (recall.empty() ? 0.0 : recall.back()) + 0.01 : 1.0);
  mpre.push_back(0.0);
  for (size_t i = mpre.size() - 1; i-- > 0;) mpre[i] = std::max(mpre[i], mpre[i + 1]);
  if (curve) {
    curve->resize(1000);
    for (int i = 0; i < 1000; ++i) (*curve)[i] = static_cast<float>(interp(i / 999.0, mrec, mpre, mpre.front(), mpre.back()));
  }
  if (protocol == Protocol::voc12) {
    double ap = 0;
    for (size_t i = 1; i < mrec.size(); ++i)
      if (mrec[i] != mrec[i - 1]) ap += (mrec[i] - mrec[i - 1]) * mpre[i];
    return ap;
  }
  double ap = 0, previous = interp(0.0, mrec, mpre, mpre.front(), mpre.back());
  for (int i = 1; i <= 100; ++i) {  // trapezoids over 101 points
    const double y = interp(i / 100.0, mrec, mpre, mpre.front(), mpre.back());
    ap += (previous + y) * 0.5 * 0.01;
    previous = y;
  }
  return ap;
}

}  // namespace detail

class Evaluator {
 public:
  explicit Evaluator(Protocol protocol = Protocol::coco) : protocol_(protocol) {}

  // Detections and ground truth of one image, both in the same pixel coordinates.
  void add_image(const std::vector<Detection>& detections, const std::vector<data::Box>& truth) {
    ++images_;
    for (const data::Box& b : truth)
      if (!b.difficult) ++labels_[b.cls];
    if (detections.empty()) return;
    std::vector<int8_t> ignored(detections.size(), 0);
    std::vector<std::array<bool, kIouThresholds>> correct(detections.size());
    for (auto& c : correct) c.fill(false);
    std::map<int64_t, std::vector<size_t>> truth_by_class;
    for (size_t t = 0; t < truth.size(); ++t) truth_by_class[truth[t].cls].push_back(t);
    for (const auto& [cls, targets] : truth_by_class) {
      std::vector<bool> taken(targets.size(), false);
      for (size_t d = 0; d < detections.size(); ++d) {  // detections arrive best first (NMS order)
        if (detections[d].cls != cls) continue;
        float best_iou = 0;
        size_t best = 0;
        for (size_t k = 0; k < targets.size(); ++k) {
          const data::Box& b = truth[targets[k]];
          const float iou = box_iou(detections[d], Detection{b.x1, b.y1, b.x2, b.y2, 0, b.cls});
          if (iou > best_iou) best_iou = iou, best = k;
        }
        if (!(best_iou > iou_threshold(0)) || taken[best]) continue;
        taken[best] = true;
        if (truth[targets[best]].difficult) {
          ignored[d] = 1;
          continue;
        }
        for (int k = 0; k < kIouThresholds; ++k) correct[d][k] = best_iou > iou_threshold(k);
      }
    }
    for (size_t d = 0; d < detections.size(); ++d)
      if (!ignored[d]) records_.push_back({detections[d].score, detections[d].cls, correct[d]});
  }

  Metrics compute() const {
    Metrics m;
    m.images = images_;
    std::vector<Record> sorted = records_;
    std::stable_sort(sorted.begin(), sorted.end(), [](const Record& a, const Record& b) { return a.score > b.score; });
    constexpr int kPoints = 1000;  // confidence grid for P, R, F1
    std::vector<std::vector<double>> p_at, r_at;
    for (const auto& [cls, n_labels] : labels_) {
      if (n_labels == 0) continue;
      ClassMetrics c;
      c.cls = cls;
      c.labels = n_labels;
      m.labels += n_labels;
      std::vector<double> conf;
      std::vector<std::array<double, kIouThresholds>> tp_cum;
      std::array<double, kIouThresholds> tp{};
      for (const Record& r : sorted) {
        if (r.cls != cls) continue;
        for (int k = 0; k < kIouThresholds; ++k) tp[k] += r.correct[k];
        tp_cum.push_back(tp);
        conf.push_back(r.score);
      }
      c.predictions = static_cast<int64_t>(conf.size());
      std::vector<double> p_curve(kPoints, 0.0), r_curve(kPoints, 0.0);
      if (!conf.empty()) {
        std::vector<double> neg_conf(conf.size()), recall0(conf.size()), precision0(conf.size());
        double sum_ap = 0;
        for (int k = 0; k < kIouThresholds; ++k) {
          std::vector<double> recall(conf.size()), precision(conf.size());
          for (size_t i = 0; i < conf.size(); ++i) {
            recall[i] = tp_cum[i][k] / (static_cast<double>(n_labels) + 1e-16);
            precision[i] = tp_cum[i][k] / static_cast<double>(i + 1);
          }
          const double ap = detail::average_precision(recall, precision, protocol_, k == 0 ? &c.pr_curve : nullptr);
          sum_ap += ap;
          if (k == 0) {
            c.ap50 = ap;
            recall0 = recall;
            precision0 = precision;
          }
        }
        c.ap50_95 = sum_ap / kIouThresholds;
        for (size_t i = 0; i < conf.size(); ++i) neg_conf[i] = -conf[i];
        for (int i = 0; i < kPoints; ++i) {
          const double x = -static_cast<double>(i) / (kPoints - 1);
          r_curve[i] = detail::interp(x, neg_conf, recall0, 0.0, recall0.back());
          p_curve[i] = detail::interp(x, neg_conf, precision0, 1.0, precision0.back());
        }
      } else {
        c.pr_curve.assign(1000, 0.0f);
      }
      p_at.push_back(p_curve);
      r_at.push_back(r_curve);
      m.classes.push_back(c);
    }
    if (m.classes.empty()) return m;
    // The confidence with the best mean F1 over classes.
    int best = 0;
    double best_f1 = -1;
    for (int i = 0; i < kPoints; ++i) {
      double f1 = 0;
      for (size_t c = 0; c < m.classes.size(); ++c) f1 += 2 * p_at[c][i] * r_at[c][i] / (p_at[c][i] + r_at[c][i] + 1e-16);
      if (f1 > best_f1 + 1e-15) best_f1 = f1, best = i;
    }
    for (size_t c = 0; c < m.classes.size(); ++c) {
      ClassMetrics& cm = m.classes[c];
      cm.precision = p_at[c][best];
      cm.recall = r_at[c][best];
      cm.f1 = 2 * cm.precision * cm.recall / (cm.precision + cm.recall + 1e-16);
      m.precision += cm.precision;
      m.recall += cm.recall;
      m.map50 += cm.ap50;
      m.map50_95 += cm.ap50_95;
    }
    const double n = static_cast<double>(m.classes.size());
    m.precision /= n;
    m.recall /= n;
    m.map50 /= n;
    m.map50_95 /= n;
    return m;
  }

 private:
  struct Record {
    float score;
    int64_t cls;
    std::array<bool, kIouThresholds> correct;
  };
  Protocol protocol_;
  int64_t images_ = 0;
  std::map<int64_t, int64_t> labels_;
  std::vector<Record> records_;
};

}  // namespace pdyolo::eval
