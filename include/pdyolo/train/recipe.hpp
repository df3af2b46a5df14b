// The reference training recipe around the optimizer (train.py): three parameter groups (batch-norm
// and implicit weights without decay, conv weights with decay, all biases), weight decay scaled to
// the nominal batch of 64, warm-up of learning rate / momentum / bias learning rate, one-cycle or
// linear learning-rate schedules, and the exponential moving average of the weights.
#pragma once
#include <cmath>

#include "pdyolo/graph/graph.hpp"
#include "pdyolo/io/value.hpp"
#include "pdyolo/train/optim.hpp"

namespace pdyolo::train {

struct RecipeHyp {
  double lr0 = 0.01, lrf = 0.1, momentum = 0.937, weight_decay = 0.0005;
  double warmup_epochs = 3.0, warmup_momentum = 0.8, warmup_bias_lr = 0.1;
  // Not in the official hyp files (train.py fixes them); small-data runs such as the sample
  // dataset's demo set them: the nominal batch gradients accumulate to, and the warm-up floor.
  double nbs = 64, warmup_min_iters = 1000;

  static RecipeHyp from_hyp(const io::Value& hyp) {
    RecipeHyp h;
    auto read = [&](const char* key, double& field) {
      if (const io::Value* v = hyp.find(key); v && v->is_number()) field = v->as_double();
    };
    read("lr0", h.lr0), read("lrf", h.lrf), read("momentum", h.momentum), read("weight_decay", h.weight_decay);
    read("warmup_epochs", h.warmup_epochs), read("warmup_momentum", h.warmup_momentum), read("warmup_bias_lr", h.warmup_bias_lr);
    read("nbs", h.nbs), read("warmup_min_iters", h.warmup_min_iters);
    PDYOLO_CHECK(h.nbs >= 1 && h.warmup_min_iters >= 0, "hyp: nbs must be >= 1 and warmup_min_iters >= 0");
    return h;
  }
};

// Optimizer steps happen every `accumulate` batches so that a step sees about nbs (64) images.
inline int64_t accumulation_steps(int64_t batch_size, double nbs = 64) {
  return std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(nbs / static_cast<double>(batch_size))));
}

struct ParamGroups {
  std::vector<Tensor> no_decay;  // batch-norm weights, implicit knowledge
  std::vector<Tensor> decay;     // conv weights
  std::vector<Tensor> biases;    // conv and batch-norm biases
};

inline ParamGroups split_parameters(const graph::Graph& g) {
  ParamGroups groups;
  for (const graph::Node& n : g.nodes)
    for (const auto& [name, t] : n.tensors) {
      if (!t.requires_grad()) continue;
      if (name == "bias") groups.biases.push_back(t);
      else if (n.op == graph::Op::conv) groups.decay.push_back(t);
      else groups.no_decay.push_back(t);  // batch-norm weight, implicit
    }
  return groups;
}

// The optimizer over the three groups, in the reference's order (0: no decay, 1: decay scaled by
// batch·accumulate/64, 2: biases): SGD with Nesterov momentum, or with train.py --adam Adam with
// beta1 = momentum (AdamW, decoupled decay, is our addition).
inline Optimizer make_optimizer(const graph::Graph& g, const RecipeHyp& hyp, int64_t batch_size, OptimizerKind kind = OptimizerKind::sgd) {
  const ParamGroups p = split_parameters(g);
  const double decay = hyp.weight_decay * static_cast<double>(batch_size * accumulation_steps(batch_size, hyp.nbs)) / hyp.nbs;
  const bool nesterov = kind == OptimizerKind::sgd;
  Optimizer optimizer(p.no_decay, {hyp.lr0, hyp.momentum, 0.0, nesterov}, kind);
  optimizer.add_param_group(p.decay, {hyp.lr0, hyp.momentum, decay, nesterov});
  optimizer.add_param_group(p.biases, {hyp.lr0, hyp.momentum, 0.0, nesterov});
  return optimizer;
}

// Learning-rate multipliers lf(epoch): one-cycle cosine from 1 down to lrf, or linear.
inline double one_cycle(double epoch, double lrf, int64_t epochs) {
  return ((1.0 - std::cos(epoch * M_PI / static_cast<double>(epochs))) / 2.0) * (lrf - 1.0) + 1.0;
}
inline double linear_lr(double epoch, double lrf, int64_t epochs) {
  return (1.0 - epoch / static_cast<double>(std::max<int64_t>(epochs - 1, 1))) * (1.0 - lrf) + lrf;
}

// Warm-up iterations: warmup_epochs of batches, at least `minimum` (the reference uses 1000).
// max(warmup_epochs · batches per epoch, warmup_min_iters)
inline int64_t warmup_iterations(const RecipeHyp& hyp, int64_t batches_per_epoch) {
  return std::max<int64_t>(static_cast<int64_t>(std::nearbyint(hyp.warmup_epochs * batches_per_epoch)),
                           static_cast<int64_t>(hyp.warmup_min_iters));
}

inline double interp(double x, double x0, double x1, double y0, double y1) {
  if (x <= x0) return y0;
  if (x >= x1) return y1;
  return y0 + (y1 - y0) * (x - x0) / (x1 - x0);
}

// Learning rates and momenta for iteration `ni` of `epoch`: during warm-up the biases start at
// warmup_bias_lr and the others at 0, SGD's momentum at warmup_momentum (Adam's beta1 stays, as in
// train.py, whose Adam groups have no 'momentum' key); afterwards lr0 · lf(epoch).
// Returns the accumulation count to use at this iteration (it ramps up during warm-up).
inline int64_t schedule(Optimizer& optimizer, const RecipeHyp& hyp, int64_t ni, int64_t warmup, double lf_epoch, int64_t batch_size) {
  const double target_lr = hyp.lr0 * lf_epoch;
  int64_t accumulate = accumulation_steps(batch_size, hyp.nbs);
  if (ni <= warmup) {
    accumulate = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(
                                          interp(static_cast<double>(ni), 0, static_cast<double>(warmup), 1.0, hyp.nbs / static_cast<double>(batch_size)))));
    for (size_t j = 0; j < optimizer.groups.size(); ++j) {
      OptimizerOptions& o = optimizer.groups[j].options;
      o.lr = interp(static_cast<double>(ni), 0, static_cast<double>(warmup), j == 2 ? hyp.warmup_bias_lr : 0.0, target_lr);
      if (optimizer.kind() == OptimizerKind::sgd)
        o.momentum = interp(static_cast<double>(ni), 0, static_cast<double>(warmup), hyp.warmup_momentum, hyp.momentum);
    }
  } else {
    for (ParamGroup& group : optimizer.groups) {
      group.options.lr = target_lr;
      group.options.momentum = hyp.momentum;
    }
  }
  return accumulate;
}

// The reference's ModelEMA: ema = d·ema + (1 − d)·model over every floating-point tensor (weights
// and batch-norm statistics), with d = decay · (1 − exp(−updates / 2000)) ramping up.
class ModelEMA {
 public:
  explicit ModelEMA(const graph::Graph& model, double decay = 0.9999, int64_t updates = 0) : decay_(decay), updates_(updates) {
    for (const auto& [name, t] : model.state_dict()) state_[name] = contiguous_copy(t.detach());
  }

  void update(const graph::Graph& model) {
    NoGradGuard no_grad;
    ++updates_;
    const float d = static_cast<float>(current_decay());
    for (const auto& [name, t] : model.state_dict()) {
      Tensor& e = state_.at(name);
      if (e.dtype() != DType::f32) {
        e.copy_(t);
        continue;
      }
      float* ep = e.data<float>();
      const Tensor src = t.is_contiguous() ? t : contiguous_copy(t);
      const float* mp = src.data<float>();
      for (int64_t i = 0; i < e.numel(); ++i) ep[i] = ep[i] * d + (1.0f - d) * mp[i];
    }
  }

  double current_decay() const { return decay_ * (1.0 - std::exp(-static_cast<double>(updates_) / 2000.0)); }
  int64_t updates() const { return updates_; }
  const std::map<std::string, Tensor>& state_dict() const { return state_; }
  std::map<std::string, Tensor>& state_dict() { return state_; }

 private:
  double decay_;
  int64_t updates_;
  std::map<std::string, Tensor> state_;
};

}  // namespace pdyolo::train
