// 2-D convolution with stride, padding, dilation, groups and optional bias.
#pragma once
#include "pdyolo/kernels/cpu/conv2d.hpp"
#include "pdyolo/kernels/ref/conv2d.hpp"
#include "pdyolo/ops/reduce.hpp"

namespace pdyolo {

struct Conv2dParams {
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  Conv2dParams& stride(int64_t s) { stride_h = stride_w = s; return *this; }
  Conv2dParams& padding(int64_t p) { pad_h = pad_w = p; return *this; }
  Conv2dParams& dilation(int64_t d) { dilation_h = dilation_w = d; return *this; }
  Conv2dParams& with_groups(int64_t g) { groups = g; return *this; }
};

namespace ops::detail {
// The conv's geometry from its operands, or an error naming the op and the shapes.
inline kernels::Conv2dGeometry conv2d_geometry(const Tensor& x, const Tensor& w, const Tensor& bias,
                                               const Conv2dParams& p) {
  PDYOLO_CHECK(x.dim() == 4 && w.dim() == 4, "conv2d: expects input [N, C, H, W] and weight [OC, C/groups, KH, KW], got ",
               shape_str(x.shape()), " and ", shape_str(w.shape()));
  PDYOLO_CHECK(p.groups >= 1 && p.stride_h >= 1 && p.stride_w >= 1 && p.dilation_h >= 1 && p.dilation_w >= 1 &&
                   p.pad_h >= 0 && p.pad_w >= 0,
               "conv2d: stride, dilation and groups must be >= 1 and padding >= 0");
  kernels::Conv2dGeometry g;
  g.batch = x.shape()[0];
  g.in_channels = x.shape()[1];
  g.in_h = x.shape()[2];
  g.in_w = x.shape()[3];
  g.out_channels = w.shape()[0];
  g.kernel_h = w.shape()[2];
  g.kernel_w = w.shape()[3];
  g.stride_h = p.stride_h; g.stride_w = p.stride_w;
  g.pad_h = p.pad_h; g.pad_w = p.pad_w;
  g.dilation_h = p.dilation_h; g.dilation_w = p.dilation_w;
  g.groups = p.groups;
  PDYOLO_CHECK(g.in_channels == w.shape()[1] * p.groups && g.out_channels % p.groups == 0, "conv2d: input ",
               shape_str(x.shape()), " does not match weight ", shape_str(w.shape()), " with groups=", p.groups);
  PDYOLO_CHECK(!bias.defined() || bias.shape() == Shape{g.out_channels}, "conv2d: bias ",
               shape_str(bias.shape()), " does not match weight ", shape_str(w.shape()));
  g.out_h = (g.in_h + 2 * g.pad_h - g.dilation_h * (g.kernel_h - 1) - 1) / g.stride_h + 1;
  g.out_w = (g.in_w + 2 * g.pad_w - g.dilation_w * (g.kernel_w - 1) - 1) / g.stride_w + 1;
  PDYOLO_CHECK(g.out_h > 0 && g.out_w > 0, "conv2d: input ", shape_str(x.shape()), " is smaller than the kernel ",
               shape_str(w.shape()), " (after padding)");
  return g;
}
}  // namespace ops::detail

// x [N, C, H, W], weight [OC, C/groups, KH, KW], bias [OC] or undefined → [N, OC, OH, OW]
inline Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias = Tensor(),
                     const Conv2dParams& params = Conv2dParams()) {
  const kernels::Conv2dGeometry g = ops::detail::conv2d_geometry(x, weight, bias, params);
  const Tensor xd = ops::detail::dense(x, "conv2d"), wd = ops::detail::dense(weight, "conv2d");
  const Tensor bd = bias.defined() ? ops::detail::dense(bias, "conv2d") : Tensor();
  const float* b = bd.defined() ? bd.data<float>() : nullptr;
  Tensor y = Tensor::empty({g.batch, g.out_channels, g.out_h, g.out_w});
  const Backend backend = select_backend(OpKind::conv2d, DType::f32);
  run_on(backend, OpKind::conv2d, [&](auto k) { k.conv2d_forward(g, xd.data<float>(), wd.data<float>(), b, y.data<float>()); });

  return autograd::record(y, "conv2d", {x, weight, bias}, [g, backend, xs = xd.detach(), ws = wd.detach(),
                                                           need_x = x.requires_grad(), need_w = weight.requires_grad(),
                                                           has_bias = bias.defined()](const Tensor& grad) {
    const Tensor dy = ops::detail::dense(grad, "conv2d backward");
    Tensor dx, dw, db;
    if (need_x) {
      dx = Tensor::empty(xs.shape());
      run_on(backend, OpKind::conv2d, [&](auto k) { k.conv2d_backward_input(g, dy.data<float>(), ws.data<float>(), dx.data<float>()); });
    }
    if (need_w) {
      dw = Tensor::empty(ws.shape());
      run_on(backend, OpKind::conv2d, [&](auto k) { k.conv2d_backward_weight(g, xs.data<float>(), dy.data<float>(), dw.data<float>()); });
    }
    if (has_bias) db = sum(sum(sum(dy, 3), 2), 0);  // [OC]
    return std::vector<Tensor>{dx, dw, db};
  });
}

}  // namespace pdyolo
