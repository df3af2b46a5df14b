// Quantization-aware training: the fused model (batch norm folded into its convs: the form that is
// trained is the form that is quantized) trains with every quantized value fake-quantized, so that
// it learns weights that survive int8.
//
//   weights      each training step fake-quantizes every integer conv's weight per output channel
//                at max|w_c| / 127 of its current values (the straight-through gradient reaches the
//                float weights); biases stay float while training and become int32 at export
//                (at s_x · s_w, as the simulation rounds them).
//   activations  every quantized node's output is fake-quantized with its group's (s, z), which
//                start from a post-training calibration; for the first `observer_steps` steps a
//                moving-average min-max observer (PyTorch's formula, seeded with the calibrated
//                range) keeps moving them, then they are frozen. observer_steps = 0 keeps the
//                calibrated ranges throughout, as NVIDIA's YOLOv7 recipe does.
//
// The ranges are a tensor the trainer checkpoints (add_state), so a resumed run continues with them.
#pragma once
#include <functional>
#include <string>

#include "pdyolo/quant/plan.hpp"

namespace pdyolo::quant {

struct QatOptions {
  int64_t observer_steps = 0;   // steps during which the activation ranges move (then frozen)
  double ema_constant = 0.01;   // the moving average's weight of each new batch
};

class QatQuantizers {
 public:
  // plan: calibrated for the fused graph g (which convs stay float is the plan's too).
  QatQuantizers(const graph::Graph& g, QuantPlan plan, QatOptions options) : plan_(std::move(plan)), o_(options) {
    state_ = Tensor::empty({plan_.groups, 4});
    for (int group = 0; group < plan_.groups; ++group) {
      const QParams p = plan_.params[static_cast<size_t>(group)];
      float* row = state_.data<float>() + group * 4;
      row[0] = p.scale, row[1] = static_cast<float>(p.zero_point);
      row[2] = dequantize_activation(kActivationMin, p), row[3] = dequantize_activation(kActivationMax, p);
    }
    for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
      if (has_output_quantizer(g, plan_, i)) tapped_.push_back(i);
      if (g.nodes[static_cast<size_t>(i)].op == graph::Op::conv && !plan_.in_float(i)) weighted_.push_back(i);
    }
  }

  // [groups, 4]: scale, zero point, and the observed range (min, max) of each group. The trainer
  // checkpoints this tensor itself (Trainer::add_state); load_state restores one saved elsewhere.
  const Tensor& state() const { return state_; }
  void load_state(const Tensor& saved, const std::string& source) {
    PDYOLO_CHECK(saved.shape() == state_.shape(), source, ": the QAT state has shape ", shape_str(saved.shape()), ", this model's quantizers ",
                 shape_str(state_.shape()));
    Tensor(state_).copy_(saved);
  }
  QParams params(int group) const {
    const float* row = state_.data<float>() + group * 4;
    return {row[0], static_cast<int32_t>(row[1])};
  }

  // Fake quantization of every quantized node's output during training; `step()` is the number of
  // training steps taken, which decides whether the observers still move.
  graph::Taps training_taps(std::function<int64_t()> step) {
    graph::Taps taps;
    for (int node : tapped_) {
      const int group = plan_.group_of[static_cast<size_t>(node)];
      taps[node] = [this, group, step](const Tensor& x) {
        if (step() < o_.observer_steps && group != plan_.input_group) observe(group, x);
        return fake_quant_activation(x, params(group));
      };
    }
    return taps;
  }

  // Fake quantization of the integer convs' weights at their current per-channel scales.
  graph::WeightTaps weight_taps() const {
    graph::WeightTaps taps;
    for (int conv : weighted_) taps[conv] = [](const Tensor& w) { return fake_quant_weight(w, weight_scales(w)); };
    return taps;
  }

  // The plan of graph g (the same fused graph, trained further): the current activation ranges, and
  // the weight scales of g's weights.
  QuantPlan plan_for(const graph::Graph& g) const {
    QuantPlan plan = plan_;
    for (int group = 0; group < plan.groups; ++group) plan.params[static_cast<size_t>(group)] = params(group);
    for (int conv : weighted_) plan.weight_scales[static_cast<size_t>(conv)] = weight_scales(g.nodes[static_cast<size_t>(conv)].tensor("weight"));
    plan.biases.clear();
    return plan;
  }

 private:
  // min ← min + c·(batch min − min), the same for max (PyTorch's MovingAverageMinMaxObserver), then
  // (s, z) from the range.
  void observe(int group, const Tensor& x) {
    const Tensor d = contiguous_copy(x.detach());
    const float* v = d.data<float>();
    if (d.numel() == 0) return;
    const auto [lo, hi] = std::minmax_element(v, v + d.numel());
    float* row = state_.data<float>() + group * 4;
    row[2] += static_cast<float>(o_.ema_constant * (*lo - row[2]));
    row[3] += static_cast<float>(o_.ema_constant * (*hi - row[3]));
    const QParams p = choose_activation_params(row[2], row[3]);
    row[0] = p.scale, row[1] = static_cast<float>(p.zero_point);
  }

  QuantPlan plan_;
  QatOptions o_;
  Tensor state_;
  std::vector<int> tapped_, weighted_;  // nodes whose output is fake-quantized; convs whose weight is
};

}  // namespace pdyolo::quant
