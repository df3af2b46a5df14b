// Reductions (sum, mean over everything or one axis), sum_to (undoing a broadcast), and
// softmax / log_softmax along an axis.
#pragma once
#include "pdyolo/kernels/ref/reduce.hpp"
#include "pdyolo/ops/elementwise.hpp"

namespace pdyolo {

namespace ops::detail {
// Sizes around `axis`: the tensor read as [outer, n, inner].
struct AxisSplit {
  int64_t outer = 1, n = 1, inner = 1;
};
inline AxisSplit split_at_axis(const Shape& shape, int64_t axis) {
  AxisSplit s;
  for (int64_t d = 0; d < static_cast<int64_t>(shape.size()); ++d) {
    if (d < axis) s.outer *= shape[d];
    else if (d == axis) s.n = shape[d];
    else s.inner *= shape[d];
  }
  return s;
}
}  // namespace ops::detail

// Sum of all elements → scalar tensor (shape {}).
inline Tensor sum(const Tensor& x) {
  const Tensor xd = ops::detail::dense(x, "sum");
  const double total = run_on(select_backend(OpKind::reduce, DType::f32), OpKind::reduce,
                              [&](auto k) { return k.sum_all(xd.numel(), xd.data<float>()); });
  Tensor out = Tensor::scalar(static_cast<float>(total));
  return autograd::record(out, "sum", {x}, [shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{Tensor::full(shape, g.item())};
  });
}

// Sum along one axis; keepdim keeps it with size 1.
inline Tensor sum(const Tensor& x, int64_t axis, bool keepdim = false) {
  axis = normalize_axis(axis, x.dim(), "sum");
  const Tensor xd = ops::detail::dense(x, "sum");
  const auto s = ops::detail::split_at_axis(x.shape(), axis);
  Shape kept = x.shape();
  kept[axis] = 1;
  Tensor out = Tensor::empty(kept);
  run_on(select_backend(OpKind::reduce, DType::f32), OpKind::reduce,
         [&](auto k) { k.sum_axis(s.outer, s.n, s.inner, xd.data<float>(), out.data<float>()); });
  Shape out_shape = kept;
  if (!keepdim) out_shape.erase(out_shape.begin() + axis);
  out = ops::detail::make_view(out, out_shape, contiguous_strides(out_shape), 0);
  return autograd::record(out, "sum", {x}, [kept, shape = x.shape()](const Tensor& g) {
    return std::vector<Tensor>{contiguous_copy(g.reshape(kept).expand(shape))};
  });
}

inline Tensor mean(const Tensor& x) {
  PDYOLO_CHECK(x.numel() > 0, "mean: empty tensor");
  return sum(x) * (1.0f / static_cast<float>(x.numel()));
}
inline Tensor mean(const Tensor& x, int64_t axis, bool keepdim = false) {
  const int64_t n = x.shape()[normalize_axis(axis, x.dim(), "mean")];
  PDYOLO_CHECK(n > 0, "mean: axis ", axis, " is empty");
  return sum(x, axis, keepdim) * (1.0f / static_cast<float>(n));
}

// Sums g down to `shape` (the inverse of broadcasting `shape` up to g's shape).
inline Tensor sum_to(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  PDYOLO_CHECK(broadcast_shapes(shape, g.shape(), "sum_to") == g.shape(), "sum_to: cannot reduce ",
               shape_str(g.shape()), " to ", shape_str(shape));
  Tensor out = g;
  while (out.dim() > static_cast<int64_t>(shape.size())) out = sum(out, 0);
  for (int64_t d = 0; d < out.dim(); ++d)
    if (shape[d] == 1 && out.shape()[d] != 1) out = sum(out, d, true);
  return out;
}

namespace ops::detail {
inline Tensor softmax_forward(const Tensor& x, int64_t axis, bool log, const char* op) {
  axis = normalize_axis(axis, x.dim(), op);
  const Tensor xd = dense(x, op);
  const auto s = split_at_axis(x.shape(), axis);
  Tensor y = Tensor::empty(x.shape());
  run_on(select_backend(OpKind::softmax, DType::f32), OpKind::softmax,
         [&](auto k) { k.softmax(s.outer, s.n, s.inner, xd.data<float>(), y.data<float>(), log); });
  return y;
}
}  // namespace ops::detail

// softmax: dx = y · (g − Σ g·y)
inline Tensor softmax(const Tensor& x, int64_t axis) {
  Tensor y = ops::detail::softmax_forward(x, axis, false, "softmax");
  return autograd::record(y, "softmax", {x}, [yd = y.detach(), axis](const Tensor& g) {
    return std::vector<Tensor>{yd * (g - sum(g * yd, axis, true))};
  });
}

// log_softmax: dx = g − softmax · Σ g
inline Tensor log_softmax(const Tensor& x, int64_t axis) {
  Tensor y = ops::detail::softmax_forward(x, axis, true, "log_softmax");
  return autograd::record(y, "log_softmax", {x}, [yd = y.detach(), axis](const Tensor& g) {
    return std::vector<Tensor>{g - exp(yd) * sum(g, axis, true)};
  });
}

}  // namespace pdyolo
