// Finite-difference gradient check: compares backward() with central differences
//   dL/dx_i ≈ (L(x + eps·e_i) − L(x − eps·e_i)) / (2·eps)
// where L = Σ w ⊙ f(inputs) with fixed random weights w, so every output element is checked.
#pragma once
#include <cmath>
#include <functional>
#include <sstream>

#include "pdyolo/autograd/engine.hpp"

namespace pdyolo::autograd {

struct GradCheckOptions {
  float eps = 1e-2f;
  double atol = 2e-3;
  double rtol = 2e-2;
  uint64_t seed = 1234;
};

struct GradCheckResult {
  bool ok = true;
  double max_abs_error = 0.0;
  std::string report;  // the worst mismatch, for the test log
};

using TestedFunction = std::function<Tensor(const std::vector<Tensor>&)>;

inline GradCheckResult grad_check(const TestedFunction& f, const std::vector<Tensor>& inputs,
                                  const GradCheckOptions& opt = GradCheckOptions()) {
  Tensor weights;
  auto loss = [&](const Tensor& y) {  // Σ w·y in double, outside autograd
    if (!weights.defined()) {
      Generator gen(opt.seed);
      weights = Tensor::uniform(y.shape(), 0.5f, 1.5f, gen);
    }
    const std::vector<float> yv = y.to_vector(), wv = weights.to_vector();
    double s = 0.0;
    for (size_t i = 0; i < yv.size(); ++i) s += static_cast<double>(yv[i]) * wv[i];
    return s;
  };
  for (const Tensor& x : inputs) {
    PDYOLO_CHECK(x.is_leaf() && x.is_contiguous(), "grad_check: inputs must be contiguous leaf tensors");
    x.impl()->grad.reset();
  }
  Tensor y = f(inputs);
  loss(y);
  y.backward(weights);

  GradCheckResult result;
  for (size_t k = 0; k < inputs.size(); ++k) {
    const Tensor& x = inputs[k];
    if (!x.requires_grad()) continue;
    const std::vector<float> analytic =
        x.grad().defined() ? x.grad().to_vector() : std::vector<float>(x.numel(), 0.0f);
    float* p = x.data<float>();
    NoGradGuard no_grad;
    for (int64_t i = 0; i < x.numel(); ++i) {
      const float saved = p[i];
      p[i] = saved + opt.eps;
      const double plus = loss(f(inputs));
      p[i] = saved - opt.eps;
      const double minus = loss(f(inputs));
      p[i] = saved;
      const double numeric = (plus - minus) / (2.0 * opt.eps);
      const double got = analytic[i];
      const double err = std::fabs(got - numeric);
      if (err > result.max_abs_error) result.max_abs_error = err;
      if (err > opt.atol + opt.rtol * std::fabs(numeric) && result.ok) {
        result.ok = false;
        std::ostringstream os;
        os << "input " << k << " element " << i << ": backward " << got << ", finite difference " << numeric;
        result.report = os.str();
      }
    }
  }
  return result;
}

}  // namespace pdyolo::autograd
