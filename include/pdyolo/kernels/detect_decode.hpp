// Decoding one level of a YOLO detection head into boxes (the reference Detect/IDetect in eval mode):
//   s = σ(t)
//   x, y = (2·s_xy − 0.5 + cell) · stride        (box centre, input pixels)
//   w, h = (2·s_wh)² · anchor                     (anchor in input pixels)
//   objectness, class scores = s
#pragma once
#include <cstdint>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/x86/sgemm_ukernels.hpp"

namespace pdyolo::kernels {

// out[i] = σ(in[i]): AVX-512 lanes where the CPU has them (within a few ulp of sigmoid_of).
inline void sigmoid_row(const float* in, float* out, int64_t n) {
#ifdef PDYOLO_X86_KERNELS
  if (cpu::cpu_has_avx512f()) return x86::sigmoid_avx512(in, out, n);
#endif
  for (int64_t i = 0; i < n; ++i) out[i] = sigmoid_of(in[i]);
}

// map [na·no, h, w] (one image's head conv output) → out [na·h·w, no] rows ordered (anchor, row, column).
// anchors [na, 2]: width and height in pixels.
inline void decode_yolo_level(const float* map, int64_t na, int64_t no, int64_t h, int64_t w, float stride,
                              const float* anchors, float* out) {
  const int64_t plane = h * w;
  parallel_for(0, na * h, 8, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> scores;  // σ of one row [no, w], computed along contiguous rows; reused
    scores.resize(static_cast<size_t>(no * w));
    for (int64_t ar = lo; ar < hi; ++ar) {
      const int64_t a = ar / h, row = ar % h;
      const float* in = map + a * no * plane + row * w;  // channel k of this row: in[k · plane + column]
      for (int64_t k = 0; k < no; ++k) sigmoid_row(in + k * plane, scores.data() + k * w, w);
      for (int64_t col = 0; col < w; ++col) {
        float* box = out + ((a * h + row) * w + col) * no;
        for (int64_t k = 0; k < no; ++k) box[k] = scores[k * w + col];
        box[0] = (box[0] * 2.0f - 0.5f + static_cast<float>(col)) * stride;
        box[1] = (box[1] * 2.0f - 0.5f + static_cast<float>(row)) * stride;
        const float bw = box[2] * 2.0f, bh = box[3] * 2.0f;
        box[2] = bw * bw * anchors[a * 2];
        box[3] = bh * bh * anchors[a * 2 + 1];
      }
    }
  });
}

}  // namespace pdyolo::kernels
