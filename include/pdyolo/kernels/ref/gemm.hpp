// Reference matrix multiply: C[M,N] (+)= A[M,K] · B[K,N], with A and B read through arbitrary
// (row, column) strides so transposes need no copies. Accumulates in double: this is the oracle.
#pragma once
#include <cstdint>

namespace pdyolo::kernels {

// A strided read-only matrix: element (i, j) is at data[i * row_stride + j * col_stride].
struct MatrixView {
  const float* data;
  int64_t row_stride;
  int64_t col_stride;
  float at(int64_t i, int64_t j) const { return data[i * row_stride + j * col_stride]; }
};

namespace ref {

inline void gemm(int64_t M, int64_t N, int64_t K, MatrixView A, MatrixView B, float* C, int64_t ldc,
                 bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double s = accumulate ? C[i * ldc + j] : 0.0;
      for (int64_t k = 0; k < K; ++k) s += static_cast<double>(A.at(i, k)) * B.at(k, j);
      C[i * ldc + j] = static_cast<float>(s);
    }
}

}  // namespace ref
}  // namespace pdyolo::kernels
