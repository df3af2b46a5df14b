// Reference reductions and softmax. Tensors are viewed as [outer, n, inner] around the reduced axis.
#pragma once
#include <cmath>
#include <cstdint>
#include <limits>

namespace pdyolo::kernels::ref {

inline double sum_all(int64_t n, const float* x) {
  double s = 0.0;
  for (int64_t i = 0; i < n; ++i) s += x[i];
  return s;
}

// x [outer, n, inner] -> out [outer, inner]
inline void sum_axis(int64_t outer, int64_t n, int64_t inner, const float* x, float* out) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      double s = 0.0;
      for (int64_t i = 0; i < n; ++i) s += x[(o * n + i) * inner + j];
      out[o * inner + j] = static_cast<float>(s);
    }
}

// Softmax (or log-softmax) along the middle axis of x [outer, n, inner]; max-subtracted for stability.
inline void softmax(int64_t outer, int64_t n, int64_t inner, const float* x, float* y, bool log) {
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t j = 0; j < inner; ++j) {
      const float* xs = x + o * n * inner + j;
      float* ys = y + o * n * inner + j;
      float max_value = -std::numeric_limits<float>::infinity();
      for (int64_t i = 0; i < n; ++i) max_value = std::max(max_value, xs[i * inner]);
      double denom = 0.0;
      for (int64_t i = 0; i < n; ++i) denom += std::exp(static_cast<double>(xs[i * inner] - max_value));
      const double log_denom = std::log(denom);
      for (int64_t i = 0; i < n; ++i) {
        const double shifted = xs[i * inner] - max_value;
        ys[i * inner] = static_cast<float>(log ? shifted - log_denom : std::exp(shifted) / denom);
      }
    }
}

}  // namespace pdyolo::kernels::ref
