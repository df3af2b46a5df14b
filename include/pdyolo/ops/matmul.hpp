// Matrix multiply of 2-D tensors. Operands are read through their strides, so transposed views
// (as in the backward pass) cost no copy.
#pragma once
#include "pdyolo/kernels/cpu/sgemm.hpp"
#include "pdyolo/kernels/ref/gemm.hpp"
#include "pdyolo/ops/shape.hpp"

namespace pdyolo {

// a [M, K] · b [K, N] → [M, N]
inline Tensor matmul(const Tensor& a, const Tensor& b) {
  PDYOLO_CHECK(a.dim() == 2 && b.dim() == 2 && a.shape()[1] == b.shape()[0], "matmul: cannot multiply ",
               shape_str(a.shape()), " by ", shape_str(b.shape()), " (expects [M, K] and [K, N])");
  PDYOLO_CHECK(a.dtype() == DType::f32 && b.dtype() == DType::f32, "matmul: expects f32 tensors");
  const int64_t M = a.shape()[0], K = a.shape()[1], N = b.shape()[1];
  Tensor out = Tensor::empty({M, N});
  const kernels::MatrixView A{a.data<float>(), a.strides()[0], a.strides()[1]};
  const kernels::MatrixView B{b.data<float>(), b.strides()[0], b.strides()[1]};
  run_on(select_backend(OpKind::matmul, DType::f32), OpKind::matmul, [&](auto k) { k.gemm(M, N, K, A, B, out.data<float>(), N); });
  return autograd::record(out, "matmul", {a, b}, [ad = a.detach(), bd = b.detach()](const Tensor& g) {
    // d/da = g · bᵀ,  d/db = aᵀ · g
    return std::vector<Tensor>{matmul(g, bd.transpose(0, 1)), matmul(ad.transpose(0, 1), g)};
  });
}

}  // namespace pdyolo
