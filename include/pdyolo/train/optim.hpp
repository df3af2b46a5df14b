// SGD with momentum, Nesterov and weight decay, with parameter groups (YOLOv7 trains with three:
// BN weights without decay, conv weights with decay, biases). The update matches torch.optim.SGD:
//   d = grad + weight_decay · p
//   buf = momentum · buf + d            (buf = d on the first step)
//   d = nesterov ? d + momentum · buf : buf
//   p -= lr · d
#pragma once
#include <vector>

#include "pdyolo/autograd/node.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/core/tensor.hpp"

namespace pdyolo::train {

struct SgdOptions {
  double lr = 0.01;
  double momentum = 0.0;
  double weight_decay = 0.0;
  bool nesterov = false;
};

struct ParamGroup {
  std::vector<Tensor> params;
  SgdOptions options;
  std::vector<Tensor> momentum_buffers;  // one per parameter, created on its first step
};

class SGD {
 public:
  SGD(std::vector<Tensor> params, const SgdOptions& options) { add_param_group(std::move(params), options); }

  void add_param_group(std::vector<Tensor> params, const SgdOptions& options) {
    PDYOLO_CHECK(!options.nesterov || options.momentum > 0.0, "SGD: nesterov needs momentum > 0");
    PDYOLO_CHECK(options.lr >= 0.0 && options.momentum >= 0.0 && options.weight_decay >= 0.0,
                 "SGD: lr, momentum and weight_decay must be non-negative");
    ParamGroup group{std::move(params), options, {}};
    group.momentum_buffers.resize(group.params.size());
    groups.push_back(std::move(group));
  }

  void step() {
    NoGradGuard no_grad;
    for (ParamGroup& group : groups)
      for (size_t i = 0; i < group.params.size(); ++i) update(group, i);
  }

  void zero_grad() {
    for (ParamGroup& group : groups)
      for (Tensor& p : group.params) p.zero_grad();
  }

  std::vector<ParamGroup> groups;  // public: schedules change lr and momentum per group

 private:
  static void update(ParamGroup& group, size_t index) {
    Tensor& p = group.params[index];
    const Tensor grad = p.grad();
    if (!grad.defined()) return;
    const SgdOptions& o = group.options;
    Tensor& buffer = group.momentum_buffers[index];
    const bool first = !buffer.defined();
    if (o.momentum != 0.0 && first) buffer = Tensor::zeros(p.shape());
    float* w = p.data<float>();
    const float* g = grad.data<float>();
    float* buf = o.momentum != 0.0 ? buffer.data<float>() : nullptr;
    const float lr = static_cast<float>(o.lr), mom = static_cast<float>(o.momentum);
    const float wd = static_cast<float>(o.weight_decay);
    parallel_for(0, p.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t j = lo; j < hi; ++j) {
        float d = g[j] + wd * w[j];
        if (buf) {
          buf[j] = first ? d : mom * buf[j] + d;
          d = o.nesterov ? d + mom * buf[j] : buf[j];
        }
        w[j] -= lr * d;
      }
    });
  }
};

}  // namespace pdyolo::train
