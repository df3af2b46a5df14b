// Batch normalisation over [N, C, H, W] with per-channel affine weight and bias, optionally fused
// with the activation that follows it (one pass over memory instead of two, and no stored
// pre-activation: the backward pass recomputes it).
#pragma once
#include "pdyolo/kernels/cpu/batch_norm.hpp"
#include "pdyolo/kernels/ref/batch_norm.hpp"
#include "pdyolo/ops/common.hpp"
#include "pdyolo/ops/elementwise.hpp"

namespace pdyolo {

struct BatchNormParams {
  bool training = true;     // batch statistics (and running-stat update) vs running statistics
  float momentum = 0.03f;   // running = (1 − momentum) · running + momentum · batch  (YOLOv7's value)
  float eps = 1e-3f;        // YOLOv7's value (PyTorch's default is 1e-5)
};

namespace ops::detail {

inline void check_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                             const Tensor& running_var, const BatchNormParams& p) {
  PDYOLO_CHECK(x.dim() == 4, "batch_norm2d: expects input [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t C = x.shape()[1];
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    PDYOLO_CHECK(t->defined() && t->shape() == Shape{C}, "batch_norm2d: parameter of shape ",
                 t->defined() ? shape_str(t->shape()) : "undefined", " does not match input ", shape_str(x.shape()),
                 " (expects [", C, "])");
  PDYOLO_CHECK(!p.training || x.shape()[0] * x.shape()[2] * x.shape()[3] > 1,
               "batch_norm2d: training needs more than one value per channel, input ", shape_str(x.shape()));
  PDYOLO_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm2d: running stats must be contiguous");
}

// Batch statistics of x [N, C, plane] (and the running-stat update), or the running statistics.
inline std::pair<Tensor, Tensor> batch_norm_statistics(const Tensor& xd, const Tensor& running_mean, const Tensor& running_var,
                                                       const BatchNormParams& p, Backend backend) {
  const int64_t N = xd.shape()[0], C = xd.shape()[1], plane = xd.shape()[2] * xd.shape()[3];
  if (!p.training)
    return {dense(running_mean, "batch_norm2d").clone().detach(), dense(running_var, "batch_norm2d").clone().detach()};
  Tensor mean = Tensor::empty({C}), var = Tensor::empty({C});
  run_on(backend, OpKind::batch_norm2d, [&](auto k) { k.batch_norm_stats(N, C, plane, xd.data<float>(), mean.data<float>(), var.data<float>()); });
  float* rm = running_mean.data<float>();
  float* rv = running_var.data<float>();
  const float unbias = static_cast<float>(N * plane) / static_cast<float>(N * plane - 1);
  for (int64_t c = 0; c < C; ++c) {
    rm[c] = (1.0f - p.momentum) * rm[c] + p.momentum * mean.data<float>()[c];
    rv[c] = (1.0f - p.momentum) * rv[c] + p.momentum * var.data<float>()[c] * unbias;
  }
  return {mean, var};
}

}  // namespace ops::detail

// act(batch_norm2d(x)): x [N, C, H, W]; weight, bias, running_mean, running_var [C]. In training
// mode the running statistics are updated in place (variance unbiased, as PyTorch) and are not
// differentiated. Every backend applies the activation in the same pass (the reference one after the
// normalisation, element by element).
inline Tensor batch_norm_act2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                               const Tensor& running_var, const BatchNormParams& p, kernels::ActivationFn act) {
  ops::detail::check_batch_norm(x, weight, bias, running_mean, running_var, p);
  const Backend backend = select_backend(OpKind::batch_norm2d, DType::f32);
  const int64_t N = x.shape()[0], C = x.shape()[1], plane = x.shape()[2] * x.shape()[3];
  const Tensor xd = ops::detail::dense(x, "batch_norm2d");
  const Tensor wd = ops::detail::dense(weight, "batch_norm2d"), bd = ops::detail::dense(bias, "batch_norm2d");
  const std::pair<Tensor, Tensor> stats = ops::detail::batch_norm_statistics(xd, running_mean, running_var, p, backend);
  const Tensor mean = stats.first, var = stats.second;
  Tensor y = Tensor::empty(x.shape());
  run_on(backend, OpKind::batch_norm2d, [&](auto k) {
    k.batch_norm_act_forward(N, C, plane, xd.data<float>(), mean.data<float>(), var.data<float>(), wd.data<float>(), bd.data<float>(),
                             p.eps, act, y.data<float>());
  });
  return autograd::record(y, "batch_norm2d", {x, weight, bias},
                          [xs = xd.detach(), ws = wd.detach(), bs = bd.detach(), mean, var, p, N, C, plane, backend, act](const Tensor& g) {
    Tensor dx = Tensor::empty(xs.shape()), dw = Tensor::empty({C}), db = Tensor::empty({C});
    const Tensor dy = ops::detail::dense_images(g, "batch_norm2d backward");  // a slice of concat's gradient stays one
    run_on(backend, OpKind::batch_norm2d, [&](auto k) {
      k.batch_norm_act_backward(N, C, plane, xs.data<float>(), mean.data<float>(), var.data<float>(), ws.data<float>(), bs.data<float>(),
                                p.eps, act, dy.data<float>(), dy.strides()[0], p.training, dx.data<float>(), dw.data<float>(),
                                db.data<float>());
    });
    return std::vector<Tensor>{dx, dw, db};
  });
}

inline Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, const BatchNormParams& p = BatchNormParams()) {
  return batch_norm_act2d(x, weight, bias, running_mean, running_var, p, kernels::ActivationFn{});
}

}  // namespace pdyolo
