// Reference max-pooling and nearest-neighbour upsampling over planes [planes = N·C, H, W].
#pragma once
#include <cstdint>
#include <limits>

namespace pdyolo::kernels {

struct Pool2dGeometry {
  int64_t planes = 1, in_h = 1, in_w = 1, out_h = 1, out_w = 1;
  int64_t kernel_h = 1, kernel_w = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0;
};

namespace ref {

// y = max over each window (padding counts as -inf); argmax = index (h·W + w) of the first maximum
// inside its plane (32 bits: planes of 2³¹ elements and more are refused by the op).
inline void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) {
  for (int64_t p = 0; p < g.planes; ++p) {
    const float* in = x + p * g.in_h * g.in_w;
    for (int64_t oh = 0; oh < g.out_h; ++oh)
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        float best = -std::numeric_limits<float>::infinity();
        int64_t best_index = -1;
        for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
          const int64_t ih = oh * g.stride_h - g.pad_h + kh;
          if (ih < 0 || ih >= g.in_h) continue;
          for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
            const int64_t iw = ow * g.stride_w - g.pad_w + kw;
            if (iw < 0 || iw >= g.in_w) continue;
            const float v = in[ih * g.in_w + iw];
            if (best_index < 0 || v > best) {
              best = v;
              best_index = ih * g.in_w + iw;
            }
          }
        }
        const int64_t o = (p * g.out_h + oh) * g.out_w + ow;
        y[o] = best;
        argmax[o] = static_cast<int32_t>(best_index);
      }
  }
}

// dx (overwritten) receives each dy at its window's argmax.
inline void max_pool2d_backward(const Pool2dGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for (int64_t i = 0; i < g.planes * in_plane; ++i) dx[i] = 0.0f;
  for (int64_t p = 0; p < g.planes; ++p)
    for (int64_t o = 0; o < out_plane; ++o) dx[p * in_plane + argmax[p * out_plane + o]] += dy[p * out_plane + o];
}

// y[p, h, w] = x[p, h / scale, w / scale]
inline void upsample_nearest_forward(int64_t planes, int64_t in_h, int64_t in_w, int64_t scale,
                                     const float* x, float* y) {
  const int64_t out_h = in_h * scale, out_w = in_w * scale;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t h = 0; h < out_h; ++h)
      for (int64_t w = 0; w < out_w; ++w)
        y[(p * out_h + h) * out_w + w] = x[(p * in_h + h / scale) * in_w + w / scale];
}

// dx[p, h, w] = sum of dy over the scale×scale block that copied x[p, h, w]
inline void upsample_nearest_backward(int64_t planes, int64_t in_h, int64_t in_w, int64_t scale,
                                      const float* dy, float* dx) {
  const int64_t out_h = in_h * scale, out_w = in_w * scale;
  for (int64_t i = 0; i < planes * in_h * in_w; ++i) dx[i] = 0.0f;
  for (int64_t p = 0; p < planes; ++p)
    for (int64_t h = 0; h < out_h; ++h)
      for (int64_t w = 0; w < out_w; ++w)
        dx[(p * in_h + h / scale) * in_w + w / scale] += dy[(p * out_h + h) * out_w + w];
}

}  // namespace ref
}  // namespace pdyolo::kernels
