// Helpers shared by the op files: argument checks and dense views of inputs for kernels.
#pragma once
#include "pdyolo/autograd/engine.hpp"
#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/core/tensor.hpp"

namespace pdyolo::ops::detail {

// A contiguous f32 CPU tensor with the same values (no copy when already contiguous).
inline Tensor dense(const Tensor& t, const char* op) {
  PDYOLO_CHECK(t.defined(), op, ": undefined input tensor");
  PDYOLO_CHECK(t.dtype() == DType::f32, op, ": expects f32 tensors, got ", dtype_name(t.dtype()),
               " (convert with .to(DType::f32))");
  PDYOLO_CHECK(t.device().type == DeviceType::cpu, op, ": no kernel for device ", t.device().str());
  return t.is_contiguous() ? t : contiguous_copy(t);
}

// t [N, C, H, W] itself where each image is one dense block (the images may lie further apart, as
// in a channel slice of a bigger tensor: read it with t.strides()[0]), else dense(t).
inline Tensor dense_images(const Tensor& t, const char* op) {
  if (t.defined() && t.dim() == 4 && t.dtype() == DType::f32 && t.device().type == DeviceType::cpu) {
    const Shape& size = t.shape();
    const Shape& stride = t.strides();
    if (stride[3] == 1 && stride[2] == size[3] && stride[1] == size[2] * size[3] && stride[0] >= size[1] * stride[1])
      return t;
  }
  return dense(t, op);
}

// A view of `base` with new geometry over the same storage (no autograd).
inline Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl()->storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

// Strides that read `t` as if broadcast to `shape` (0 on broadcast axes).
inline Shape broadcast_strides(const Tensor& t, const Shape& shape) {
  Shape strides(shape.size(), 0);
  const size_t lead = shape.size() - t.shape().size();
  for (size_t i = 0; i < t.shape().size(); ++i)
    strides[lead + i] = t.shape()[i] == 1 ? 0 : t.strides()[i];
  return strides;
}

// Writes contiguous `src` through the strides of the view `dst` (same shape).
inline void assign_to_view(const Tensor& dst, const Tensor& src) {
  Tensor s = dense(src, "assign");
  float* base = static_cast<float*>(dst.impl()->storage->data()) + dst.storage_offset();
  const Shape& shape = dst.shape();
  const Shape& strides = dst.strides();
  const int64_t nd = dst.dim();
  if (nd == 0) {
    base[0] = s.data<float>()[0];
    return;
  }
  const int64_t inner = shape.back(), rows = inner ? dst.numel() / inner : 0;
  const float* in = s.data<float>();
  parallel_for(0, rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rest = row, off = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        off += (rest % shape[d]) * strides[d];
        rest /= shape[d];
      }
      for (int64_t i = 0; i < inner; ++i) base[off + i * strides.back()] = in[row * inner + i];
    }
  });
}

}  // namespace pdyolo::ops::detail
