// Reference elementwise kernels: one plain loop each. The math is the functor the op passes in;
// these loops only define how elements are visited.
#pragma once
#include <cstdint>
#include <vector>

namespace pdyolo::kernels::ref {

// y[i] = f(x[i])
template <class F>
void map1(int64_t n, const float* x, float* y, F f) {
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// out[i] = f(a[i], b[i])
template <class F>
void map2(int64_t n, const float* a, const float* b, float* out, F f) {
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}

// out[i] = f(a[i], b[i], c[i])
template <class F>
void map3(int64_t n, const float* a, const float* b, const float* c, float* out, F f) {
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i], c[i]);
}

// out (contiguous, `shape`) = f(a, b) where a and b are read through their own strides
// (stride 0 on broadcast axes). Each element's offsets are recomputed from its flat index.
template <class F>
void broadcast_map2(const std::vector<int64_t>& shape, const float* a, const std::vector<int64_t>& a_strides,
                    const float* b, const std::vector<int64_t>& b_strides, float* out, F f) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  const int64_t nd = static_cast<int64_t>(shape.size());
  for (int64_t i = 0; i < n; ++i) {
    int64_t rest = i, offset_a = 0, offset_b = 0;
    for (int64_t d = nd - 1; d >= 0; --d) {
      const int64_t index = rest % shape[d];
      rest /= shape[d];
      offset_a += index * a_strides[d];
      offset_b += index * b_strides[d];
    }
    out[i] = f(a[offset_a], b[offset_b]);
  }
}

}  // namespace pdyolo::kernels::ref
