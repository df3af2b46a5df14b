// Shape ops: views (reshape, permute, narrow, expand) and copies (contiguous, clone, concat,
// split). Views share storage; every op here is differentiable.
#pragma once
#include <numeric>

#include "pdyolo/ops/common.hpp"

namespace pdyolo {

Tensor sum_to(const Tensor& g, const Shape& shape);  // ops/reduce.hpp

inline Tensor Tensor::reshape(const Shape& requested) const {
  Shape shape = requested;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      PDYOLO_CHECK(infer < 0, "reshape: more than one -1 in ", shape_str(requested));
      infer = static_cast<int64_t>(i);
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    PDYOLO_CHECK(known > 0 && numel() % known == 0, "reshape: cannot infer -1 in ",
                 shape_str(requested), " for ", numel(), " elements");
    shape[infer] = numel() / known;
  }
  check_shape(shape, "reshape");
  PDYOLO_CHECK(shape_numel(shape) == numel(), "reshape: shape ", shape_str(requested), " does not fit ",
               numel(), " elements of a tensor of shape ", shape_str(this->shape()));
  Tensor base = is_contiguous() ? *this : contiguous_copy(*this);
  Tensor out = ops::detail::make_view(base, shape, contiguous_strides(shape), base.storage_offset());
  const Shape input_shape = this->shape();
  return autograd::record(out, "reshape", {*this}, [input_shape](const Tensor& g) {
    return std::vector<Tensor>{g.reshape(input_shape)};
  });
}

inline Tensor Tensor::permute(const std::vector<int64_t>& order) const {
  PDYOLO_CHECK(static_cast<int64_t>(order.size()) == dim(), "permute: order has ", order.size(),
               " axes for a tensor of shape ", shape_str(shape()));
  std::vector<int64_t> inverse(order.size(), -1);
  Shape shape(order.size()), strides(order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    const int64_t axis = normalize_axis(order[i], dim(), "permute");
    PDYOLO_CHECK(inverse[axis] < 0, "permute: axis ", axis, " appears twice in the order");
    inverse[axis] = static_cast<int64_t>(i);
    shape[i] = this->shape()[axis];
    strides[i] = this->strides()[axis];
  }
  Tensor out = ops::detail::make_view(*this, shape, strides, storage_offset());
  return autograd::record(out, "permute", {*this}, [inverse](const Tensor& g) {
    return std::vector<Tensor>{g.permute(inverse)};
  });
}

inline Tensor Tensor::transpose(int64_t a, int64_t b) const {
  std::vector<int64_t> order(dim());
  std::iota(order.begin(), order.end(), 0);
  std::swap(order[normalize_axis(a, dim(), "transpose")], order[normalize_axis(b, dim(), "transpose")]);
  return permute(order);
}

inline Tensor Tensor::narrow(int64_t axis, int64_t start, int64_t length) const {
  axis = normalize_axis(axis, dim(), "narrow");
  PDYOLO_CHECK(start >= 0 && length >= 0 && start + length <= shape()[axis], "narrow: range [", start,
               ", ", start + length, ") is outside axis ", axis, " of shape ", shape_str(shape()));
  Shape shape = this->shape();
  shape[axis] = length;
  Tensor out = ops::detail::make_view(*this, shape, strides(), storage_offset() + start * strides()[axis]);
  const Shape input_shape = this->shape();
  return autograd::record(out, "narrow", {*this}, [input_shape, axis, start, length](const Tensor& g) {
    Tensor full = Tensor::zeros(input_shape);
    ops::detail::assign_to_view(full.narrow(axis, start, length), g);
    return std::vector<Tensor>{full};
  });
}

inline Tensor Tensor::expand(const Shape& shape) const {
  PDYOLO_CHECK(broadcast_shapes(this->shape(), shape, "expand") == shape, "expand: cannot expand ",
               shape_str(this->shape()), " to ", shape_str(shape));
  Tensor out = ops::detail::make_view(*this, shape, ops::detail::broadcast_strides(*this, shape), storage_offset());
  const Shape input_shape = this->shape();
  return autograd::record(out, "expand", {*this}, [input_shape](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, input_shape)};
  });
}

inline Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

inline Tensor Tensor::clone() const {
  return autograd::record(contiguous_copy(*this), "clone", {*this}, [](const Tensor& g) {
    return std::vector<Tensor>{g};
  });
}

// Joins tensors along `axis`; all other sizes must match.
inline Tensor concat(const std::vector<Tensor>& tensors, int64_t axis) {
  PDYOLO_CHECK(!tensors.empty(), "concat: no tensors");
  const Shape& first = tensors[0].shape();
  axis = normalize_axis(axis, static_cast<int64_t>(first.size()), "concat");
  Shape out_shape = first;
  out_shape[axis] = 0;
  for (const Tensor& t : tensors) {
    Shape expect = first;
    expect[axis] = t.dim() == static_cast<int64_t>(first.size()) ? t.shape()[axis] : -1;
    PDYOLO_CHECK(t.shape() == expect, "concat: shape ", shape_str(t.shape()),
                 " does not match ", shape_str(first), " outside axis ", axis);
    out_shape[axis] += t.shape()[axis];
  }
  Tensor out = Tensor::empty(out_shape);
  std::vector<int64_t> starts, sizes;
  int64_t start = 0;
  for (const Tensor& t : tensors) {
    starts.push_back(start);
    sizes.push_back(t.shape()[axis]);
    ops::detail::assign_to_view(out.narrow(axis, start, t.shape()[axis]), t);
    start += t.shape()[axis];
  }
  return autograd::record(out, "concat", tensors, [starts, sizes, axis](const Tensor& g) {
    std::vector<Tensor> grads;
    for (size_t i = 0; i < starts.size(); ++i) grads.push_back(g.narrow(axis, starts[i], sizes[i]));
    return grads;
  });
}

// Splits along `axis` into pieces of the given sizes (which must add up to the axis length).
inline std::vector<Tensor> split(const Tensor& t, const std::vector<int64_t>& sizes, int64_t axis) {
  axis = normalize_axis(axis, t.dim(), "split");
  const int64_t total = std::accumulate(sizes.begin(), sizes.end(), int64_t{0});
  PDYOLO_CHECK(total == t.shape()[axis], "split: sizes add up to ", total, " but axis ", axis,
               " of shape ", shape_str(t.shape()), " has ", t.shape()[axis]);
  std::vector<Tensor> parts;
  int64_t start = 0;
  for (int64_t size : sizes) {
    parts.push_back(t.narrow(axis, start, size));
    start += size;
  }
  return parts;
}

}  // namespace pdyolo

namespace pdyolo {

// Rows of x [N, C] picked by index (repeats allowed) → [rows.size(), C]; the gradient adds back
// into the picked rows.
inline Tensor gather_rows(const Tensor& x, const std::vector<int64_t>& rows) {
  PDYOLO_CHECK(x.dim() == 2, "gather_rows: expects [N, C], got ", shape_str(x.shape()));
  const int64_t n = x.shape()[0], c = x.shape()[1];
  const Tensor xd = ops::detail::dense(x, "gather_rows");
  Tensor out = Tensor::empty({static_cast<int64_t>(rows.size()), c});
  for (size_t r = 0; r < rows.size(); ++r) {
    PDYOLO_CHECK(rows[r] >= 0 && rows[r] < n, "gather_rows: row ", rows[r], " is outside [0, ", n, ")");
    std::copy(xd.data<float>() + rows[r] * c, xd.data<float>() + (rows[r] + 1) * c, out.data<float>() + static_cast<int64_t>(r) * c);
  }
  return autograd::record(out, "gather_rows", {x}, [rows, n, c](const Tensor& g) {
    const Tensor gd = ops::detail::dense(g, "gather_rows backward");
    Tensor dx = Tensor::zeros({n, c});
    for (size_t r = 0; r < rows.size(); ++r)
      for (int64_t j = 0; j < c; ++j) dx.data<float>()[rows[r] * c + j] += gd.data<float>()[static_cast<int64_t>(r) * c + j];
    return std::vector<Tensor>{dx};
  });
}

}  // namespace pdyolo
