// Eigen's GEMM behind pdyolo's GEMM signature — an alternative to compare our kernel against
// (tests and benchmarks). Available when built with PDYOLO_EIGEN (defines PDYOLO_WITH_EIGEN).
#pragma once
#ifdef PDYOLO_WITH_EIGEN
#include <Eigen/Core>

#include "pdyolo/kernels/ref/gemm.hpp"

namespace pdyolo::kernels::eigen {

inline void sgemm(int64_t M, int64_t N, int64_t K, MatrixView A, MatrixView B, float* C, int64_t ldc,
                  bool accumulate) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  using Strided = Eigen::Stride<Eigen::Dynamic, Eigen::Dynamic>;
  Eigen::Map<const RowMajor, 0, Strided> a(A.data, M, K, Strided(A.row_stride, A.col_stride));
  Eigen::Map<const RowMajor, 0, Strided> b(B.data, K, N, Strided(B.row_stride, B.col_stride));
  Eigen::Map<RowMajor, 0, Eigen::OuterStride<>> c(C, M, N, Eigen::OuterStride<>(ldc));
  if (accumulate) c.noalias() += a * b;
  else c.noalias() = a * b;
}

}  // namespace pdyolo::kernels::eigen
#endif
