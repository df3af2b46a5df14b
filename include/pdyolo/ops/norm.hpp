// Batch normalisation over [N, C, H, W] with per-channel affine weight and bias.
#pragma once
#include "pdyolo/kernels/ref/batch_norm.hpp"
#include "pdyolo/ops/common.hpp"

namespace pdyolo {

struct BatchNormParams {
  bool training = true;     // batch statistics (and running-stat update) vs running statistics
  float momentum = 0.03f;   // running = (1 − momentum) · running + momentum · batch  (YOLOv7's value)
  float eps = 1e-3f;        // YOLOv7's value (PyTorch's default is 1e-5)
};

// x [N, C, H, W]; weight, bias, running_mean, running_var [C]. In training mode the running
// statistics are updated in place (variance unbiased, as PyTorch) and are not differentiated.
inline Tensor batch_norm2d(const Tensor& x, const Tensor& weight, const Tensor& bias, const Tensor& running_mean,
                           const Tensor& running_var, const BatchNormParams& p = BatchNormParams()) {
  PDYOLO_CHECK(x.dim() == 4, "batch_norm2d: expects input [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t N = x.shape()[0], C = x.shape()[1], plane = x.shape()[2] * x.shape()[3];
  for (const Tensor* t : {&weight, &bias, &running_mean, &running_var})
    PDYOLO_CHECK(t->defined() && t->shape() == Shape{C}, "batch_norm2d: parameter of shape ",
                 t->defined() ? shape_str(t->shape()) : "undefined", " does not match input ", shape_str(x.shape()),
                 " (expects [", C, "])");
  PDYOLO_CHECK(!p.training || N * plane > 1, "batch_norm2d: training needs more than one value per channel, input ",
               shape_str(x.shape()));
  const Tensor xd = ops::detail::dense(x, "batch_norm2d");
  const Tensor wd = ops::detail::dense(weight, "batch_norm2d"), bd = ops::detail::dense(bias, "batch_norm2d");
  Tensor mean, var;
  if (p.training) {
    mean = Tensor::empty({C});
    var = Tensor::empty({C});
    kernels::ref::batch_norm_stats(N, C, plane, xd.data<float>(), mean.data<float>(), var.data<float>());
    PDYOLO_CHECK(running_mean.is_contiguous() && running_var.is_contiguous(), "batch_norm2d: running stats must be contiguous");
    float* rm = running_mean.data<float>();
    float* rv = running_var.data<float>();
    const float unbias = static_cast<float>(N * plane) / static_cast<float>(N * plane - 1);
    for (int64_t c = 0; c < C; ++c) {
      rm[c] = (1.0f - p.momentum) * rm[c] + p.momentum * mean.data<float>()[c];
      rv[c] = (1.0f - p.momentum) * rv[c] + p.momentum * var.data<float>()[c] * unbias;
    }
  } else {
    mean = ops::detail::dense(running_mean, "batch_norm2d").clone().detach();
    var = ops::detail::dense(running_var, "batch_norm2d").clone().detach();
  }
  Tensor y = Tensor::empty(x.shape());
  kernels::ref::batch_norm_apply(N, C, plane, xd.data<float>(), mean.data<float>(), var.data<float>(), wd.data<float>(),
                                 bd.data<float>(), p.eps, y.data<float>());
  return autograd::record(y, "batch_norm2d", {x, weight, bias},
                          [xs = xd.detach(), ws = wd.detach(), mean, var, p, N, C, plane](const Tensor& g) {
    const Tensor dy = ops::detail::dense(g, "batch_norm2d backward");
    Tensor dx = Tensor::empty(xs.shape()), dw = Tensor::empty({C}), db = Tensor::empty({C});
    kernels::ref::batch_norm_backward(N, C, plane, xs.data<float>(), mean.data<float>(), var.data<float>(),
                                      ws.data<float>(), p.eps, dy.data<float>(), p.training, dx.data<float>(),
                                      dw.data<float>(), db.data<float>());
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace pdyolo
