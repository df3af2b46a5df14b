// Teacher–student training. A Distiller holds the teacher, checks that it fits the student, and
// plugs into train::Trainer: its loss hook runs the teacher (eval mode, no gradients) on exactly
// the student's augmented batch and returns L = α·task + β·KD, task being the reference's loss (its
// gained means times the batch size) and KD the mean of distill/losses.hpp — not scaled by the batch:
// so scaled, kl at the defaults outweighed the task loss 100-fold once warm-up raised the learning
// rate, and diverged on BCCD (bench/RESULTS.md); taps collect the student's neck features for the feature modes; the 1×1 adapters those
// modes need are trained with the student and saved in checkpoints, never in the model.
#pragma once
#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "pdyolo/distill/losses.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/nn/layers.hpp"
#include "pdyolo/train/trainer.hpp"

namespace pdyolo::distill {

enum class KdMode { kl, bce, mse, feature, cwd };

inline KdMode parse_kd_mode(const std::string& s) {
  if (s == "kl") return KdMode::kl;
  if (s == "bce") return KdMode::bce;
  if (s == "mse") return KdMode::mse;
  if (s == "feature") return KdMode::feature;
  if (s == "cwd") return KdMode::cwd;
  throw_error("--kd: unknown mode '", s, "' (kl, bce, mse, feature or cwd)");
}
inline KdMask parse_kd_mask(const std::string& s) {
  if (s == "teacher-obj") return KdMask::teacher_obj;
  if (s == "gt") return KdMask::ground_truth;
  if (s == "none") return KdMask::none;
  throw_error("--kd-mask: unknown mask '", s, "' (teacher-obj, gt or none)");
}

struct KdOptions {
  KdMode mode = KdMode::kl;
  float alpha = 0.7f, beta = 0.3f;  // L = α·task + β·KD
  float temperature = 3.0f;         // kl
  float tau = 1.0f;                 // cwd
  KdMask mask = KdMask::teacher_obj;  // kl (teacher_obj or none) and feature (any)
  int64_t stop_epoch = -1;            // from this epoch on (counted from 0) the task loss alone; −1: never
};

// The neck outputs that feed the detect head, one per level: the node each head conv reads
// (looking through IDetect's implicit layers on both sides of it).
inline std::vector<int> neck_outputs(const graph::Graph& g) {
  std::vector<int> necks;
  for (int level_input : g.nodes[static_cast<size_t>(g.detect_node())].inputs) {
    int i = level_input;
    while (g.nodes[i].op == graph::Op::implicit_mul) i = g.nodes[i].inputs[0];
    PDYOLO_CHECK(g.nodes[i].op == graph::Op::conv, "distill: detect input '", g.nodes[level_input].name, "' does not come from a head conv");
    i = g.nodes[i].inputs[0];
    while (g.nodes[i].op == graph::Op::implicit_add) i = g.nodes[i].inputs[0];
    necks.push_back(i);
  }
  return necks;
}

// Teacher and student must predict the same things at the same places: classes, anchors, strides.
inline void check_compatible(const models::YoloModel& teacher, const models::YoloModel& student, const std::string& teacher_name) {
  const graph::DetectAttrs &t = teacher.detect(), &s = student.detect();
  PDYOLO_CHECK(t.nc == s.nc, teacher_name, ": the teacher detects ", t.nc, " classes, the student ", s.nc);
  PDYOLO_CHECK(t.na == s.na, teacher_name, ": the teacher has ", t.na, " anchors per cell, the student ", s.na);
  const auto list = [](const std::vector<float>& v) {
    std::ostringstream out;
    for (size_t i = 0; i < v.size(); ++i) out << (i ? ", " : "[") << v[i];
    return out.str() + "]";
  };
  PDYOLO_CHECK(t.strides == s.strides, teacher_name, ": the teacher's levels have strides ", list(t.strides), ", the student's ", list(s.strides));
  const auto anchors = [](const models::YoloModel& m) {
    return m.graph.nodes[static_cast<size_t>(m.graph.detect_node())].tensor("anchor_grid").to_vector();
  };
  // (compared to a relative 1e-4: the EMA averages the anchor buffers too, in float, so a trained
  // model's anchors carry rounding, e.g. 373.00003)
  const std::vector<float> ta = anchors(teacher), sa = anchors(student);
  bool same = ta.size() == sa.size();
  for (size_t i = 0; same && i < ta.size(); ++i) same = std::fabs(ta[i] - sa[i]) <= 1e-4f * std::max(1.0f, std::fabs(sa[i]));
  PDYOLO_CHECK(same, teacher_name, ": the teacher's anchors differ from the student's");
}

class Distiller {
 public:
  Distiller(models::YoloModel teacher, const models::YoloModel& student, const KdOptions& options, uint64_t seed,
            const std::string& teacher_name)
      : teacher_(std::move(teacher)), o_(options) {
    check_compatible(teacher_, student, teacher_name);
    PDYOLO_CHECK(o_.alpha >= 0 && o_.beta >= 0, "--kd-alpha and --kd-beta must not be negative");
    PDYOLO_CHECK(o_.mask != KdMask::ground_truth || o_.mode == KdMode::feature, "--kd-mask gt applies to --kd feature only");
    graph::fuse(teacher_.graph);  // inference only: batch norms and RepConv folded, the same outputs faster
    teacher_.graph.eval();
    if (feature_mode()) make_adapters(student, seed, teacher_name);
  }

  // Installs the loss hook, the taps and the adapters on a trainer (before any resume()).
  void attach(train::Trainer& trainer) {
    for (size_t l = 0; l < adapters_.size(); ++l)
      if (adapters_[l].defined()) trainer.add_trainable("distill.adapter." + std::to_string(l), adapters_[l]);
    if (feature_mode()) {
      graph::Taps taps;
      for (size_t l = 0; l < student_necks_.size(); ++l)
        taps[student_necks_[l]] = [this, l](const Tensor& x) { return student_features_[l] = x; };
      trainer.add_taps(taps);
    }
    trainer.set_loss_hook([this](const train::LossContext& ctx) { return loss(ctx); });
  }

  const models::YoloModel& teacher() const { return teacher_; }

 private:
  bool feature_mode() const { return o_.mode == KdMode::feature || o_.mode == KdMode::cwd; }

  // One 1×1 adapter per level whose channel counts differ (student → teacher channels).
  void make_adapters(const models::YoloModel& student, uint64_t seed, const std::string& teacher_name) {
    student_necks_ = neck_outputs(student.graph);
    teacher_necks_ = neck_outputs(teacher_.graph);
    PDYOLO_CHECK(student_necks_.size() == teacher_necks_.size(), teacher_name, ": ", teacher_necks_.size(), " teacher levels, ",
                 student_necks_.size(), " student levels");
    student_features_.resize(student_necks_.size());
    Generator gen(seed ^ 0x6b64ull);
    for (size_t l = 0; l < student_necks_.size(); ++l) {
      const int64_t cs = student.graph.channels(student_necks_[l]), ct = teacher_.graph.channels(teacher_necks_[l]);
      adapters_.push_back(cs == ct ? Tensor() : nn::init_uniform_fan_in({ct, cs, 1, 1}, cs, gen));
    }
  }

  train::HookLoss loss(const train::LossContext& ctx) {
    train::HookLoss result = loss_of_step(ctx);
    for (Tensor& f : student_features_) f = Tensor();  // the step's graph is the loss's to keep, not ours
    return result;
  }

  train::HookLoss loss_of_step(const train::LossContext& ctx) {
    if (o_.stop_epoch >= 0 && ctx.epoch >= o_.stop_epoch) return train::HookLoss(ctx.task.loss);
    std::vector<Tensor> teacher_features(teacher_necks_.size());
    graph::Taps taps;
    for (size_t l = 0; l < teacher_necks_.size(); ++l)
      taps[teacher_necks_[l]] = [&teacher_features, l](const Tensor& x) { return teacher_features[l] = x; };
    graph::RunOptions run;
    run.decode = false;
    run.taps = feature_mode() ? &taps : nullptr;
    graph::DetectOutput teacher_out;
    {
      NoGradGuard no_grad;
      teacher_out = graph::forward(teacher_.graph, ctx.batch.images, run);
    }
    const Tensor kd = kd_term(ctx.out.raw, teacher_out.raw, teacher_features, ctx.batch.targets);
    return train::HookLoss(ctx.task.loss * o_.alpha + kd * o_.beta, kd.item());
  }

  Tensor kd_term(const std::vector<Tensor>& student_raw, const std::vector<Tensor>& teacher_raw, const std::vector<Tensor>& teacher_features,
                 const Tensor& targets) {
    switch (o_.mode) {
      case KdMode::kl: return kl_loss(student_raw, teacher_raw, o_.temperature, o_.mask);
      case KdMode::bce: return bce_loss(student_raw, teacher_raw);
      case KdMode::mse: return mse_loss(student_raw, teacher_raw);
      case KdMode::feature:
      case KdMode::cwd: break;
    }
    std::vector<Tensor> adapted;
    for (size_t l = 0; l < student_features_.size(); ++l) {
      PDYOLO_CHECK(student_features_[l].defined(), "distill: the student's neck output ", l, " was not seen (taps not attached?)");
      adapted.push_back(adapters_[l].defined() ? conv2d(student_features_[l], adapters_[l]) : student_features_[l]);
    }
    if (o_.mode == KdMode::cwd) return cwd_loss(adapted, teacher_features, o_.tau);
    std::vector<Tensor> weights;
    for (size_t l = 0; l < teacher_raw.size(); ++l) {
      const Shape& a = adapted[l].shape();  // [N, C, H, W]
      weights.push_back(o_.mask == KdMask::teacher_obj    ? teacher_objectness_mask(teacher_raw[l])
                        : o_.mask == KdMask::ground_truth ? ground_truth_mask(targets, a[0], a[2], a[3])
                                                          : Tensor::ones({a[0], 1, a[2], a[3]}));
    }
    return feature_loss(adapted, teacher_features, weights);
  }

  models::YoloModel teacher_;
  KdOptions o_;
  std::vector<int> student_necks_, teacher_necks_;
  std::vector<Tensor> adapters_;           // [C_teacher, C_student, 1, 1] per level; undefined where the counts agree
  std::vector<Tensor> student_features_;   // the student's neck outputs of the current step (its taps write them)
};

}  // namespace pdyolo::distill
