// Non-maximum suppression as the reference's non_max_suppression(): candidates need objectness
// above the threshold, confidence is obj × cls (one row per class above the threshold with
// multi_label, else the best class), boxes of different classes never suppress each other, IoU
// above the threshold suppresses, at most max_det detections per image, best first.
#pragma once
#include <algorithm>
#include <numeric>
#include <vector>

#include "pdyolo/core/tensor.hpp"

namespace pdyolo::eval {

struct Detection {
  float x1 = 0, y1 = 0, x2 = 0, y2 = 0;  // pixels
  float score = 0;
  int64_t cls = 0;
};

struct NmsOptions {
  float conf_thres = 0.25f;
  float iou_thres = 0.45f;
  bool multi_label = false;
  bool agnostic = false;       // suppress across classes
  int64_t max_det = 300;
  int64_t max_candidates = 30000;  // the reference's max_nms
};

inline float box_iou(const Detection& a, const Detection& b) {
  const float iw = std::min(a.x2, b.x2) - std::max(a.x1, b.x1), ih = std::min(a.y2, b.y2) - std::max(a.y1, b.y1);
  if (iw <= 0 || ih <= 0) return 0.0f;
  const float inter = iw * ih;
  return inter / ((a.x2 - a.x1) * (a.y2 - a.y1) + (b.x2 - b.x1) * (b.y2 - b.y1) - inter);
}

// pred [n, 5 + nc]: cx, cy, w, h, objectness, class scores (as the model's decoded output).
inline std::vector<Detection> non_max_suppression(const float* pred, int64_t n, int64_t no, const NmsOptions& o) {
  const int64_t nc = no - 5;
  const bool multi = o.multi_label && nc > 1;
  std::vector<Detection> candidates;
  for (int64_t i = 0; i < n; ++i) {
    const float* p = pred + i * no;
    if (!(p[4] > o.conf_thres)) continue;
    Detection box{p[0] - p[2] / 2, p[1] - p[3] / 2, p[0] + p[2] / 2, p[1] + p[3] / 2, 0, 0};
    if (nc == 1) {
      box.score = p[4];
      if (box.score > o.conf_thres) candidates.push_back(box);
    } else if (multi) {
      for (int64_t c = 0; c < nc; ++c) {
        const float conf = p[5 + c] * p[4];
        if (conf > o.conf_thres) {
          box.score = conf;
          box.cls = c;
          candidates.push_back(box);
        }
      }
    } else {
      int64_t best = 0;
      for (int64_t c = 1; c < nc; ++c)
        if (p[5 + c] > p[5 + best]) best = c;
      box.score = p[5 + best] * p[4];
      box.cls = best;
      if (box.score > o.conf_thres) candidates.push_back(box);
    }
  }
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return candidates[a].score > candidates[b].score; });
  if (static_cast<int64_t>(order.size()) > o.max_candidates) order.resize(static_cast<size_t>(o.max_candidates));
  // Greedy suppression, best first. Like the reference (torchvision's nms over boxes offset by
  // class × 4096), IoU is computed in float on the offset coordinates — which only boxes of the
  // same class can overlap — so near-threshold decisions round the same way.
  constexpr float kClassOffset = 4096.0f;
  std::vector<Detection> kept;
  std::vector<std::vector<size_t>> kept_by_class;
  std::vector<Detection> shifted_kept;
  for (size_t idx : order) {
    const Detection& d = candidates[idx];
    const float offset = o.agnostic ? 0.0f : static_cast<float>(d.cls) * kClassOffset;
    const Detection shifted{d.x1 + offset, d.y1 + offset, d.x2 + offset, d.y2 + offset, d.score, d.cls};
    const size_t group = o.agnostic ? 0 : static_cast<size_t>(d.cls);
    if (group >= kept_by_class.size()) kept_by_class.resize(group + 1);
    bool suppressed = false;
    for (size_t k : kept_by_class[group])
      if (box_iou(shifted_kept[k], shifted) > o.iou_thres) {
        suppressed = true;
        break;
      }
    if (suppressed) continue;
    kept_by_class[group].push_back(kept.size());
    kept.push_back(d);
    shifted_kept.push_back(shifted);
    if (static_cast<int64_t>(kept.size()) >= o.max_det) break;
  }
  return kept;
}

// decoded [B, N, 5 + nc] → detections per image.
inline std::vector<std::vector<Detection>> non_max_suppression(const Tensor& decoded, const NmsOptions& o) {
  PDYOLO_CHECK(decoded.dim() == 3 && decoded.shape()[2] > 5, "non_max_suppression: expects [B, N, 5 + nc], got ",
               shape_str(decoded.shape()));
  const Tensor d = decoded.is_contiguous() ? decoded : contiguous_copy(decoded);
  std::vector<std::vector<Detection>> out(static_cast<size_t>(d.shape()[0]));
  const int64_t n = d.shape()[1], no = d.shape()[2];
  parallel_tasks(d.shape()[0], [&](int64_t b) { out[b] = non_max_suppression(d.data<float>() + b * n * no, n, no, o); });
  return out;
}

}  // namespace pdyolo::eval
