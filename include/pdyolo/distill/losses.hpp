// Knowledge-distillation losses: a student's detection outputs against a teacher's.
//
// Raw maps are the detect head's per-level outputs (graph/detect.hpp), [N, na, H, W, no] with
// no = 5 + nc: x, y, w, h, objectness, classes — all pre-sigmoid. Features are the neck outputs
// that feed the head, [N, C, H, W]. The teacher's tensors are constants (detached here); gradients
// flow to the student's maps (and to the feature adapters). Each loss is a mean over the cells of a
// level (weighted where stated), summed over the levels; the trainer scales it like the task loss.
//
//   kl       T²·KL(softmax(t_cls/T) ‖ softmax(s_cls/T)) per anchor cell, averaged with weights
//            σ(t_obj) (mask teacher_obj: the teacher's objects count, its background barely), or
//            plainly (mask none). A naive unweighted KL is dominated by background cells.
//   bce      the objectness-weighted form of PaddleDetection's YOLOv3 distillation: BCE(s, σ(t)) on
//            x, y and on the classes and L1 on w, h, weighted by σ(t_obj); objectness BCE against
//            the teacher's decision 1[t_obj > 0] on every cell.
//   mse      mean squared difference of the raw maps.
//   feature  (A(s_f) − t_f)² per cell, averaged with the teacher's highest objectness among the
//            cell's anchors as weight (or 1 on the cells inside a ground-truth box, 0 elsewhere);
//            A is a 1×1 adapter conv when channel counts differ.
//   cwd      channel-wise distillation: each channel's map, softmax over its positions at
//            temperature τ, τ²·KL(teacher ‖ student) averaged over images and channels.
#pragma once
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "pdyolo/ops/conv.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/ops/loss.hpp"
#include "pdyolo/ops/reduce.hpp"

namespace pdyolo::distill {

enum class KdMask { teacher_obj, ground_truth, none };  // ground_truth: feature imitation only

namespace detail {

inline void check_pairs(const std::vector<Tensor>& student, const std::vector<Tensor>& teacher, const char* what) {
  PDYOLO_CHECK(!student.empty() && student.size() == teacher.size(), "distill: ", student.size(), " student ", what, " but ",
               teacher.size(), " teacher ", what);
  for (size_t l = 0; l < student.size(); ++l)
    PDYOLO_CHECK(student[l].shape() == teacher[l].shape(), "distill: level ", l, ": student ", what, " ", shape_str(student[l].shape()),
                 " but teacher ", shape_str(teacher[l].shape()));
}

// σ(x) of a constant, elementwise (no graph).
inline Tensor sigmoid_constant(const Tensor& x) { return sigmoid(x.detach()).detach(); }

inline float total(const Tensor& constant) { return sum(constant).item(); }

// 1 where the logit is positive, else 0 (a constant of the same shape).
inline Tensor positive(const Tensor& logits) {
  const Tensor d = ops::detail::dense(logits.detach(), "distill");
  Tensor out = Tensor::empty(d.shape());
  std::transform(d.data<float>(), d.data<float>() + d.numel(), out.data<float>(), [](float v) { return v > 0 ? 1.0f : 0.0f; });
  return out;
}

}  // namespace detail

// raw maps [N, na, H, W, 5 + nc] per level → scalar.
inline Tensor kl_loss(const std::vector<Tensor>& student, const std::vector<Tensor>& teacher, float temperature,
                      KdMask mask = KdMask::teacher_obj) {
  detail::check_pairs(student, teacher, "maps");
  PDYOLO_CHECK(temperature > 0, "distill: the temperature must be positive, got ", temperature);
  PDYOLO_CHECK(mask != KdMask::ground_truth, "distill: kl weights cells by the teacher's objectness or not at all");
  Tensor loss = Tensor::scalar(0.0f);
  for (size_t l = 0; l < student.size(); ++l) {
    const int64_t nc = student[l].shape()[4] - 5;
    PDYOLO_CHECK(nc >= 1, "distill: kl needs class scores (no = 5 + nc)");
    const Tensor t = teacher[l].detach();
    const Tensor log_ps = log_softmax(student[l].narrow(4, 5, nc) / temperature, -1);
    const Tensor pt = softmax(t.narrow(4, 5, nc) / temperature, -1).detach();
    const Tensor kl = sum(kl_div(log_ps, pt, Reduction::none), 4);  // [N, na, H, W]
    if (mask == KdMask::none) {
      loss = loss + mean(kl) * (temperature * temperature);
    } else {
      const Tensor w = detail::sigmoid_constant(t.narrow(4, 4, 1)).reshape(kl.shape());
      loss = loss + sum(kl * w) * (temperature * temperature / detail::total(w));
    }
  }
  return loss;
}

// raw maps [N, na, H, W, 5 + nc] per level → scalar.
inline Tensor bce_loss(const std::vector<Tensor>& student, const std::vector<Tensor>& teacher) {
  detail::check_pairs(student, teacher, "maps");
  const BceParams none{1.0f, Reduction::none};
  Tensor loss = Tensor::scalar(0.0f);
  for (size_t l = 0; l < student.size(); ++l) {
    const Tensor& s = student[l];
    const Tensor t = teacher[l].detach();
    const int64_t nc = s.shape()[4] - 5;
    const Tensor w = detail::sigmoid_constant(t.narrow(4, 4, 1));  // [N, na, H, W, 1]
    const Tensor xy = sum(bce_with_logits(s.narrow(4, 0, 2), detail::sigmoid_constant(t.narrow(4, 0, 2)), none), 4, true);
    const Tensor wh = sum(abs(s.narrow(4, 2, 2) - t.narrow(4, 2, 2)), 4, true);
    loss = loss + mean((xy + wh) * w);
    if (nc > 0) loss = loss + mean(bce_with_logits(s.narrow(4, 5, nc), detail::sigmoid_constant(t.narrow(4, 5, nc)), none) * w);
    loss = loss + bce_with_logits(s.narrow(4, 4, 1), detail::positive(t.narrow(4, 4, 1)));
  }
  return loss;
}

// raw maps (or any tensors) per level → scalar.
inline Tensor mse_loss(const std::vector<Tensor>& student, const std::vector<Tensor>& teacher) {
  detail::check_pairs(student, teacher, "maps");
  Tensor loss = Tensor::scalar(0.0f);
  for (size_t l = 0; l < student.size(); ++l) loss = loss + mse_loss(student[l], teacher[l].detach());
  return loss;
}

// The weight of each cell for feature imitation: the teacher's highest σ(objectness) among the
// cell's anchors. teacher raw map [N, na, H, W, no] → [N, 1, H, W] (a constant).
inline Tensor teacher_objectness_mask(const Tensor& teacher_raw) {
  const Shape& s = teacher_raw.shape();
  const Tensor obj = ops::detail::dense(teacher_raw.detach().narrow(4, 4, 1), "teacher_objectness_mask");
  const int64_t n = s[0], na = s[1], cells = s[2] * s[3];
  Tensor mask = Tensor::empty({n, 1, s[2], s[3]});
  const float* o = obj.data<float>();
  float* m = mask.data<float>();
  for (int64_t i = 0; i < n; ++i)
    for (int64_t c = 0; c < cells; ++c) {
      float best = -INFINITY;
      for (int64_t a = 0; a < na; ++a) best = std::max(best, o[(i * na + a) * cells + c]);
      m[i * cells + c] = 1.0f / (1.0f + std::exp(-best));
    }
  return mask;
}

// The weight of each cell for feature imitation on the labels: 1 where the cell's centre lies inside
// a ground-truth box of its image (and on the cell holding each box's centre, however small the
// box), else 0. targets [n, 6] (image, class, cx, cy, w, h; normalised) → [N, 1, H, W].
inline Tensor ground_truth_mask(const Tensor& targets, int64_t n, int64_t h, int64_t w) {
  Tensor mask = Tensor::zeros({n, 1, h, w});
  float* m = mask.data<float>();
  const std::vector<float> t = targets.to_vector();
  for (size_t r = 0; r + 6 <= t.size(); r += 6) {
    const int64_t image = static_cast<int64_t>(t[r]);
    if (image < 0 || image >= n) continue;
    const float x1 = (t[r + 2] - t[r + 4] / 2) * w, x2 = (t[r + 2] + t[r + 4] / 2) * w;
    const float y1 = (t[r + 3] - t[r + 5] / 2) * h, y2 = (t[r + 3] + t[r + 5] / 2) * h;
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x)
        if (x + 0.5f >= x1 && x + 0.5f <= x2 && y + 0.5f >= y1 && y + 0.5f <= y2) m[(image * h + y) * w + x] = 1;
    const int64_t cx = std::clamp<int64_t>(static_cast<int64_t>(t[r + 2] * w), 0, w - 1), cy = std::clamp<int64_t>(static_cast<int64_t>(t[r + 3] * h), 0, h - 1);
    m[(image * h + cy) * w + cx] = 1;
  }
  return mask;
}

// adapted student features [N, C, H, W], teacher features [N, C, H, W], weights [N, 1, H, W] per level → scalar.
// A level whose weights are all zero (no labelled object in the batch) adds nothing.
inline Tensor feature_loss(const std::vector<Tensor>& adapted, const std::vector<Tensor>& teacher, const std::vector<Tensor>& weights) {
  detail::check_pairs(adapted, teacher, "features");
  PDYOLO_CHECK(weights.size() == adapted.size(), "distill: ", weights.size(), " weight maps for ", adapted.size(), " feature levels");
  Tensor loss = Tensor::scalar(0.0f);
  for (size_t l = 0; l < adapted.size(); ++l) {
    const Tensor w = weights[l].detach();
    if (detail::total(w) <= 0) continue;
    const Tensor diff = adapted[l] - teacher[l].detach();
    loss = loss + sum(diff * diff * w) * (1.0f / (detail::total(w) * static_cast<float>(adapted[l].shape()[1])));
  }
  return loss;
}

// adapted student features [N, C, H, W], teacher features [N, C, H, W] per level → scalar.
inline Tensor cwd_loss(const std::vector<Tensor>& adapted, const std::vector<Tensor>& teacher, float tau) {
  detail::check_pairs(adapted, teacher, "features");
  PDYOLO_CHECK(tau > 0, "distill: the cwd temperature must be positive, got ", tau);
  Tensor loss = Tensor::scalar(0.0f);
  for (size_t l = 0; l < adapted.size(); ++l) {
    const Shape& s = adapted[l].shape();
    const Tensor log_ps = log_softmax(adapted[l].reshape({s[0] * s[1], s[2] * s[3]}) / tau, 1);
    const Tensor pt = softmax(teacher[l].detach().reshape({s[0] * s[1], s[2] * s[3]}) / tau, 1).detach();
    loss = loss + sum(kl_div(log_ps, pt, Reduction::none)) * (tau * tau / static_cast<float>(s[0] * s[1]));
  }
  return loss;
}

}  // namespace pdyolo::distill
