// Optimizers with parameter groups (YOLOv7 trains with three: BN weights without decay, conv
// weights with decay, biases). Each update matches its torch.optim counterpart element by element:
//
// SGD (momentum, Nesterov, L2 weight decay), as torch.optim.SGD:
//   d = grad + weight_decay · p
//   buf = momentum · buf + d            (buf = d on the first step)
//   d = nesterov ? d + momentum · buf : buf
//   p -= lr · d
//
// Adam (train.py --adam: beta1 = the hyp's momentum, L2 decay added to the gradient) and AdamW
// (decoupled decay), as torch.optim.Adam / AdamW, at step t = 1, 2, ...:
//   AdamW: p -= lr · weight_decay · p           Adam: grad += weight_decay · p
//   m = beta1 · m + (1 − beta1) · grad
//   v = beta2 · v + (1 − beta2) · grad²
//   p -= lr / (1 − beta1^t) · m / (sqrt(v) / sqrt(1 − beta2^t) + eps)
#pragma once
#include <cmath>
#include <string>
#include <vector>

#include "pdyolo/autograd/node.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/core/tensor.hpp"

namespace pdyolo::train {

enum class OptimizerKind { sgd, adam, adamw };

inline const char* optimizer_name(OptimizerKind k) {
  switch (k) {
    case OptimizerKind::sgd: return "sgd";
    case OptimizerKind::adam: return "adam";
    case OptimizerKind::adamw: return "adamw";
  }
  return "?";
}

inline OptimizerKind optimizer_from_name(const std::string& name) {
  for (OptimizerKind k : {OptimizerKind::sgd, OptimizerKind::adam, OptimizerKind::adamw})
    if (name == optimizer_name(k)) return k;
  throw_error("unknown optimizer '", name, "' (expected sgd, adam or adamw)");
}

struct OptimizerOptions {
  double lr = 0.01;
  double momentum = 0.0;      // SGD: momentum; Adam/AdamW: beta1
  double weight_decay = 0.0;  // SGD/Adam: L2 term added to the gradient; AdamW: decoupled decay
  bool nesterov = false;      // SGD only
  double beta2 = 0.999;       // Adam/AdamW only
  double eps = 1e-8;          // Adam/AdamW only
};

struct ParamGroup {
  std::vector<Tensor> params;
  OptimizerOptions options;
  // Per-parameter state, created on the parameter's first step: the momentum buffer (SGD) or first
  // moment m (Adam), the second moment v (Adam only), and the number of steps taken (Adam only).
  std::vector<Tensor> momentum_buffers;
  std::vector<Tensor> second_moments;
  std::vector<int64_t> steps;
};

class Optimizer {
 public:
  Optimizer(std::vector<Tensor> params, const OptimizerOptions& options, OptimizerKind kind = OptimizerKind::sgd) : kind_(kind) {
    add_param_group(std::move(params), options);
  }

  // Appends a parameter to group g (its state starts empty, as a new group's does).
  void add_param(size_t g, const Tensor& param) {
    PDYOLO_CHECK(g < groups.size(), optimizer_name(kind_), ": no parameter group ", g);
    ParamGroup& group = groups[g];
    group.params.push_back(param);
    group.momentum_buffers.emplace_back();
    group.second_moments.emplace_back();
    group.steps.push_back(0);
  }

  void add_param_group(std::vector<Tensor> params, const OptimizerOptions& options) {
    PDYOLO_CHECK(kind_ != OptimizerKind::sgd || !options.nesterov || options.momentum > 0.0, "SGD: nesterov needs momentum > 0");
    PDYOLO_CHECK(options.lr >= 0.0 && options.momentum >= 0.0 && options.weight_decay >= 0.0,
                 optimizer_name(kind_), ": lr, momentum and weight_decay must be non-negative");
    PDYOLO_CHECK(kind_ == OptimizerKind::sgd || (options.momentum < 1.0 && options.beta2 >= 0.0 && options.beta2 < 1.0 && options.eps > 0.0),
                 optimizer_name(kind_), ": betas must lie in [0, 1) and eps be positive");
    ParamGroup group{std::move(params), options, {}, {}, {}};
    group.momentum_buffers.resize(group.params.size());
    group.second_moments.resize(group.params.size());
    group.steps.assign(group.params.size(), 0);
    groups.push_back(std::move(group));
  }

  void step() {
    NoGradGuard no_grad;
    for (ParamGroup& group : groups)
      for (size_t i = 0; i < group.params.size(); ++i) {
        if (!group.params[i].grad().defined()) continue;
        if (kind_ == OptimizerKind::sgd) sgd_update(group, i);
        else adam_update(group, i, kind_ == OptimizerKind::adamw);
      }
  }

  void zero_grad() {
    for (ParamGroup& group : groups)
      for (Tensor& p : group.params) p.zero_grad();
  }

  OptimizerKind kind() const { return kind_; }

  std::vector<ParamGroup> groups;  // public: schedules change lr and momentum per group

 private:
  static void sgd_update(ParamGroup& group, size_t index) {
    Tensor& p = group.params[index];
    const Tensor grad = p.grad();
    const OptimizerOptions& o = group.options;
    Tensor& buffer = group.momentum_buffers[index];
    const bool first = !buffer.defined();
    if (o.momentum != 0.0 && first) buffer = Tensor::zeros(p.shape());
    float* w = p.data<float>();
    const float* g = grad.data<float>();
    float* buf = o.momentum != 0.0 ? buffer.data<float>() : nullptr;
    const float lr = static_cast<float>(o.lr), mom = static_cast<float>(o.momentum);
    const float wd = static_cast<float>(o.weight_decay);
    const bool nesterov = o.nesterov;
    parallel_for(0, p.numel(), 1 << 14, [=](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        float d = g[j] + wd * w[j];
        if (buf) {
          buf[j] = first ? d : mom * buf[j] + d;
          d = nesterov ? d + mom * buf[j] : buf[j];
        }
        w[j] -= lr * d;
      }
    });
  }

  static void adam_update(ParamGroup& group, size_t index, bool decoupled) {
    Tensor& p = group.params[index];
    const Tensor grad = p.grad();
    const OptimizerOptions& o = group.options;
    if (!group.momentum_buffers[index].defined()) {
      group.momentum_buffers[index] = Tensor::zeros(p.shape());
      group.second_moments[index] = Tensor::zeros(p.shape());
    }
    const int64_t t = ++group.steps[index];
    float* w = p.data<float>();
    const float* g = grad.data<float>();
    float* m = group.momentum_buffers[index].data<float>();
    float* v = group.second_moments[index].data<float>();
    const float beta1 = static_cast<float>(o.momentum), beta2 = static_cast<float>(o.beta2);
    const float one_minus_beta1 = static_cast<float>(1.0 - o.momentum), one_minus_beta2 = static_cast<float>(1.0 - o.beta2);
    const float wd = static_cast<float>(o.weight_decay), eps = static_cast<float>(o.eps);
    const float decay_factor = static_cast<float>(1.0 - o.lr * o.weight_decay);  // AdamW
    // The bias corrections in double, rounded once, as torch computes them on Python floats.
    const float step_size = static_cast<float>(o.lr / (1.0 - std::pow(o.momentum, static_cast<double>(t))));
    const float correction2_sqrt = static_cast<float>(std::sqrt(1.0 - std::pow(o.beta2, static_cast<double>(t))));
    parallel_for(0, p.numel(), 1 << 14, [=](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        float gj = g[j];
        if (decoupled) w[j] *= decay_factor;
        else gj += wd * w[j];
        m[j] = m[j] * beta1 + one_minus_beta1 * gj;
        v[j] = v[j] * beta2 + one_minus_beta2 * (gj * gj);
        w[j] -= step_size * (m[j] / (std::sqrt(v[j]) / correction2_sqrt + eps));
      }
    });
  }

  OptimizerKind kind_;
};

}  // namespace pdyolo::train
