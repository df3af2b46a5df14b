// Layers: Conv2d, BatchNorm2d, Linear, activations, MaxPool2d, Upsample, Sequential.
// Initialisation follows PyTorch's defaults, so freshly built models behave the same.
#pragma once
#include <cmath>

#include "pdyolo/nn/module.hpp"
#include "pdyolo/ops/conv.hpp"
#include "pdyolo/ops/loss.hpp"
#include "pdyolo/ops/matmul.hpp"
#include "pdyolo/ops/norm.hpp"
#include "pdyolo/ops/pool.hpp"

namespace pdyolo::nn {

// PyTorch's kaiming_uniform_(a = √5) for weights and its bias rule: both U(−1/√fan_in, 1/√fan_in).
inline Tensor init_uniform_fan_in(const Shape& shape, int64_t fan_in, Generator& gen) {
  const float bound = fan_in > 0 ? 1.0f / std::sqrt(static_cast<float>(fan_in)) : 0.0f;
  return Tensor::uniform(shape, -bound, bound, gen);
}

struct Conv2dOptions {
  int64_t in_channels = 1, out_channels = 1, kernel = 1;
  int64_t stride = 1, padding = 0, dilation = 1, groups = 1;
  bool bias = true;
};

class Conv2d : public Module {
 public:
  explicit Conv2d(const Conv2dOptions& o, Generator& gen = default_generator()) : options(o) {
    PDYOLO_CHECK(o.groups >= 1 && o.in_channels % o.groups == 0 && o.out_channels % o.groups == 0,
                 "Conv2d: channels ", o.in_channels, "→", o.out_channels, " are not divisible by groups ", o.groups);
    const int64_t fan_in = o.in_channels / o.groups * o.kernel * o.kernel;
    weight = register_parameter("weight", init_uniform_fan_in({o.out_channels, o.in_channels / o.groups, o.kernel, o.kernel}, fan_in, gen));
    if (o.bias) bias = register_parameter("bias", init_uniform_fan_in({o.out_channels}, fan_in, gen));
  }
  Tensor forward(const Tensor& x) override { return conv2d(x, weight, bias, params()); }
  std::string type_name() const override { return "Conv2d"; }
  Conv2dParams params() const {
    return Conv2dParams().stride(options.stride).padding(options.padding).dilation(options.dilation).with_groups(options.groups);
  }

  Conv2dOptions options;
  Tensor weight;  // [out, in / groups, k, k]
  Tensor bias;    // [out] or undefined
};

class BatchNorm2d : public Module {
 public:
  // eps 1e-3 and momentum 0.03 are YOLOv7's settings (PyTorch's defaults are 1e-5 and 0.1).
  explicit BatchNorm2d(int64_t channels, float eps = 1e-3f, float momentum = 0.03f) : eps(eps), momentum(momentum) {
    weight = register_parameter("weight", Tensor::ones({channels}));
    bias = register_parameter("bias", Tensor::zeros({channels}));
    running_mean = register_buffer("running_mean", Tensor::zeros({channels}));
    running_var = register_buffer("running_var", Tensor::ones({channels}));
    num_batches_tracked = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
  Tensor forward(const Tensor& x) override {
    if (is_training()) {
      int64_t* count = num_batches_tracked.data<int64_t>();
      *count += 1;
    }
    return batch_norm2d(x, weight, bias, running_mean, running_var, BatchNormParams{is_training(), momentum, eps});
  }
  std::string type_name() const override { return "BatchNorm2d"; }

  float eps, momentum;
  Tensor weight, bias, running_mean, running_var, num_batches_tracked;
};

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool with_bias = true, Generator& gen = default_generator()) {
    weight = register_parameter("weight", init_uniform_fan_in({out_features, in_features}, in_features, gen));
    if (with_bias) bias = register_parameter("bias", init_uniform_fan_in({out_features}, in_features, gen));
  }
  // x [N, in] → [N, out]
  Tensor forward(const Tensor& x) override {
    Tensor y = matmul(x, weight.transpose(0, 1));
    return bias.defined() ? y + bias : y;
  }
  std::string type_name() const override { return "Linear"; }
  Tensor weight;  // [out, in]
  Tensor bias;    // [out]
};

// An activation or other parameter-free layer defined by one function.
class Lambda : public Module {
 public:
  Lambda(std::string name, std::function<Tensor(const Tensor&)> fn) : name_(std::move(name)), fn_(std::move(fn)) {}
  Tensor forward(const Tensor& x) override { return fn_(x); }
  std::string type_name() const override { return name_; }

 private:
  std::string name_;
  std::function<Tensor(const Tensor&)> fn_;
};

inline std::shared_ptr<Module> SiLU() { return std::make_shared<Lambda>("SiLU", [](const Tensor& x) { return silu(x); }); }
inline std::shared_ptr<Module> ReLU() { return std::make_shared<Lambda>("ReLU", [](const Tensor& x) { return relu(x); }); }
inline std::shared_ptr<Module> Sigmoid() { return std::make_shared<Lambda>("Sigmoid", [](const Tensor& x) { return sigmoid(x); }); }
inline std::shared_ptr<Module> Identity() { return std::make_shared<Lambda>("Identity", [](const Tensor& x) { return x; }); }
inline std::shared_ptr<Module> LeakyReLU(float slope = 0.01f) {
  return std::make_shared<Lambda>("LeakyReLU", [slope](const Tensor& x) { return leaky_relu(x, slope); });
}
inline std::shared_ptr<Module> MaxPool2d(int64_t kernel, int64_t stride = 0, int64_t padding = 0) {
  return std::make_shared<Lambda>("MaxPool2d", [=](const Tensor& x) { return max_pool2d(x, {kernel, stride, padding}); });
}
inline std::shared_ptr<Module> Upsample(int64_t scale) {
  return std::make_shared<Lambda>("Upsample", [scale](const Tensor& x) { return upsample_nearest(x, scale); });
}

// Children named "0", "1", … run in order.
class Sequential : public Module {
 public:
  Sequential() = default;
  explicit Sequential(std::vector<std::shared_ptr<Module>> modules) {
    for (auto& m : modules) push_back(std::move(m));
  }
  Sequential& push_back(std::shared_ptr<Module> m) {
    register_module(std::to_string(children().size()), std::move(m));
    return *this;
  }
  Tensor forward(const Tensor& x) override {
    Tensor y = x;
    for (auto& [name, child] : children()) y = (*child)(y);
    return y;
  }
  std::string type_name() const override { return "Sequential"; }
  Module& operator[](size_t i) const { return *children().at(i).second; }
};

}  // namespace pdyolo::nn
