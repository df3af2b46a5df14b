// Parallel elementwise kernels: the reference loops split across threads, with the broadcast walk
// done row by row (offsets computed once per row, then a tight inner loop the compiler vectorises).
#pragma once
#include <cstdint>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/x86/sgemm_ukernels.hpp"

namespace pdyolo::kernels::cpu {

// out[i] = σ(in[i]) on one thread: AVX-512 lanes where the CPU has them (within a few ulp of sigmoid_of).
inline void sigmoid_row(const float* in, float* out, int64_t n) {
#ifdef PDYOLO_X86_KERNELS
  if (cpu_has_avx512f()) return x86::sigmoid_avx512(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = sigmoid_of(in[i]);
}

constexpr int64_t kElementwiseGrain = 1 << 14;

template <class F>
void map1(int64_t n, const float* x, float* y, F f) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    const F fn = f;  // local copy: captured constants stay in registers and the loop vectorises
    for (int64_t i = lo; i < hi; ++i) y[i] = fn(x[i]);
  });
}

template <class F>
void map2(int64_t n, const float* a, const float* b, float* out, F f) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    const F fn = f;  // local copy: captured constants stay in registers and the loop vectorises
    for (int64_t i = lo; i < hi; ++i) out[i] = fn(a[i], b[i]);
  });
}

template <class F>
void map3(int64_t n, const float* a, const float* b, const float* c, float* out, F f) {
  parallel_for(0, n, kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    const F fn = f;  // local copy: captured constants stay in registers and the loop vectorises
    for (int64_t i = lo; i < hi; ++i) out[i] = fn(a[i], b[i], c[i]);
  });
}

template <class F>
void broadcast_map2(const std::vector<int64_t>& shape, const float* a, const std::vector<int64_t>& a_strides,
                    const float* b, const std::vector<int64_t>& b_strides, float* out, F f) {
  const int64_t nd = static_cast<int64_t>(shape.size());
  if (nd == 0) {
    out[0] = f(a[0], b[0]);
    return;
  }
  const int64_t inner = shape.back();
  const int64_t sa = a_strides.back(), sb = b_strides.back();
  int64_t rows = 1;
  for (int64_t d = 0; d + 1 < nd; ++d) rows *= shape[d];
  if (inner == 0 || rows == 0) return;
  parallel_for(0, rows, std::max<int64_t>(1, kElementwiseGrain / inner), [&](int64_t lo, int64_t hi) {
    for (int64_t row = lo; row < hi; ++row) {
      int64_t rest = row, offset_a = 0, offset_b = 0;
      for (int64_t d = nd - 2; d >= 0; --d) {
        const int64_t index = rest % shape[d];
        rest /= shape[d];
        offset_a += index * a_strides[d];
        offset_b += index * b_strides[d];
      }
      const float* pa = a + offset_a;
      const float* pb = b + offset_b;
      float* po = out + row * inner;
      if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], pb[i]);
      } else if (sa == 1 && sb == 0) {
        const float vb = *pb;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i], vb);
      } else if (sa == 0 && sb == 1) {
        const float va = *pa;
        for (int64_t i = 0; i < inner; ++i) po[i] = f(va, pb[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) po[i] = f(pa[i * sa], pb[i * sb]);
      }
    }
  });
}

}  // namespace pdyolo::kernels::cpu
