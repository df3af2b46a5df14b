// Max-pooling, nearest-neighbour upsampling and reorg (space-to-depth) over [N, C, H, W].
#pragma once
#include <limits>

#include "pdyolo/kernels/cpu/pool.hpp"
#include "pdyolo/ops/common.hpp"

namespace pdyolo {

struct MaxPool2dParams {
  int64_t kernel = 2;
  int64_t stride = 0;   // 0 means stride = kernel (PyTorch's default)
  int64_t padding = 0;  // at most kernel / 2
};

inline Tensor max_pool2d(const Tensor& x, const MaxPool2dParams& p = MaxPool2dParams()) {
  const int64_t stride = p.stride > 0 ? p.stride : p.kernel;
  PDYOLO_CHECK(x.dim() == 4, "max_pool2d: expects input [N, C, H, W], got ", shape_str(x.shape()));
  PDYOLO_CHECK(p.kernel >= 1 && p.padding >= 0 && 2 * p.padding <= p.kernel, "max_pool2d: kernel ", p.kernel,
               " with padding ", p.padding, " (padding must be at most half the kernel)");
  kernels::Pool2dGeometry g;
  g.planes = x.shape()[0] * x.shape()[1];
  g.in_h = x.shape()[2];
  g.in_w = x.shape()[3];
  g.kernel_h = g.kernel_w = p.kernel;
  g.stride_h = g.stride_w = stride;
  g.pad_h = g.pad_w = p.padding;
  g.out_h = (g.in_h + 2 * p.padding - p.kernel) / stride + 1;
  g.out_w = (g.in_w + 2 * p.padding - p.kernel) / stride + 1;
  PDYOLO_CHECK(g.out_h > 0 && g.out_w > 0, "max_pool2d: input ", shape_str(x.shape()), " is smaller than the kernel ", p.kernel);
  PDYOLO_CHECK(g.in_h * g.in_w <= std::numeric_limits<int32_t>::max(), "max_pool2d: planes of ", g.in_h, "×", g.in_w,
               " are too large for the 32-bit argmax");
  const Tensor xd = ops::detail::dense(x, "max_pool2d");
  Tensor y = Tensor::empty({x.shape()[0], x.shape()[1], g.out_h, g.out_w});
  const Tensor argmax = Tensor::empty(y.shape(), DType::i32);  // index inside the plane, for backward
  const Backend backend = select_backend(OpKind::max_pool2d, DType::f32);
  run_on(backend, OpKind::max_pool2d, [&](auto k) { k.max_pool2d_forward(g, xd.data<float>(), y.data<float>(), argmax.data<int32_t>()); });
  return autograd::record(y, "max_pool2d", {x}, [g, argmax, backend, shape = x.shape()](const Tensor& grad) {
    const Tensor dy = ops::detail::dense(grad, "max_pool2d backward");
    Tensor dx = Tensor::empty(shape);
    run_on(backend, OpKind::max_pool2d, [&](auto k) { k.max_pool2d_backward(g, dy.data<float>(), argmax.data<int32_t>(), dx.data<float>()); });
    return std::vector<Tensor>{dx};
  });
}

// Nearest-neighbour upsampling by an integer factor: [N, C, H, W] → [N, C, H·s, W·s]
inline Tensor upsample_nearest(const Tensor& x, int64_t scale) {
  PDYOLO_CHECK(x.dim() == 4, "upsample_nearest: expects input [N, C, H, W], got ", shape_str(x.shape()));
  PDYOLO_CHECK(scale >= 1, "upsample_nearest: scale must be a positive integer, got ", scale);
  const Tensor xd = ops::detail::dense(x, "upsample_nearest");
  const int64_t planes = x.shape()[0] * x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  Tensor y = Tensor::empty({x.shape()[0], x.shape()[1], h * scale, w * scale});
  const Backend backend = select_backend(OpKind::upsample_nearest, DType::f32);
  run_on(backend, OpKind::upsample_nearest, [&](auto k) { k.upsample_nearest_forward(planes, h, w, scale, xd.data<float>(), y.data<float>()); });
  return autograd::record(y, "upsample_nearest", {x}, [planes, h, w, scale, backend, shape = x.shape()](const Tensor& grad) {
    const Tensor dy = ops::detail::dense(grad, "upsample_nearest backward");
    Tensor dx = Tensor::empty(shape);
    run_on(backend, OpKind::upsample_nearest,
           [&](auto k) { k.upsample_nearest_backward(planes, h, w, scale, dy.data<float>(), dx.data<float>()); });
    return std::vector<Tensor>{dx};
  });
}

// Reorg, YOLOv7-P6's space-to-depth: [N, C, H, W] → [N, 4C, H/2, W/2], the four 2×2 phases one
// after another in the reference's order (kernels/ref/reorg.hpp). H and W must be even.
inline Tensor reorg(const Tensor& x) {
  PDYOLO_CHECK(x.dim() == 4, "reorg: expects input [N, C, H, W], got ", shape_str(x.shape()));
  const int64_t n = x.shape()[0], c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
  PDYOLO_CHECK(h % 2 == 0 && w % 2 == 0 && h > 0 && w > 0, "reorg: height and width must be even and positive, got ", shape_str(x.shape()));
  const Tensor xd = ops::detail::dense(x, "reorg");
  Tensor y = Tensor::empty({n, 4 * c, h / 2, w / 2});
  const Backend backend = select_backend(OpKind::reorg, DType::f32);
  run_on(backend, OpKind::reorg, [&](auto k) { k.reorg_forward(n, c, h, w, xd.data<float>(), y.data<float>()); });
  return autograd::record(y, "reorg", {x}, [n, c, h, w, backend, shape = x.shape()](const Tensor& grad) {
    const Tensor dy = ops::detail::dense(grad, "reorg backward");
    Tensor dx = Tensor::empty(shape);
    run_on(backend, OpKind::reorg, [&](auto k) { k.reorg_backward(n, c, h, w, dy.data<float>(), dx.data<float>()); });
    return std::vector<Tensor>{dx};
  });
}

}  // namespace pdyolo
