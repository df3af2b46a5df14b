// Reference 2-D convolution (cross-correlation, as PyTorch), forward and both gradients, written
// as the direct sums of the definition. Accumulates in double.
#pragma once
#include <cstdint>
#include <vector>

namespace pdyolo::kernels {

// Every size of one conv2d call, resolved. Input [batch, in_channels, in_h, in_w],
// weight [out_channels, in_channels / groups, kernel_h, kernel_w], output [batch, out_channels, out_h, out_w].
struct Conv2dGeometry {
  int64_t batch = 1, in_channels = 1, in_h = 1, in_w = 1;
  int64_t out_channels = 1, kernel_h = 1, kernel_w = 1, out_h = 1, out_w = 1;
  int64_t stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;

  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
  int64_t patch_size() const { return in_per_group() * kernel_h * kernel_w; }  // GEMM K
  int64_t out_plane() const { return out_h * out_w; }                         // GEMM N
  // Input row/column read by output position o at kernel tap k (may fall in the padding).
  int64_t in_row(int64_t oh, int64_t kh) const { return oh * stride_h - pad_h + kh * dilation_h; }
  int64_t in_col(int64_t ow, int64_t kw) const { return ow * stride_w - pad_w + kw * dilation_w; }
};

namespace ref {

// Calls fn(input_index, weight_index, output_index) for every multiply-add of the convolution.
template <class Fn>
void conv2d_for_each_tap(const Conv2dGeometry& g, Fn fn) {
  const int64_t cin = g.in_per_group(), cout = g.out_per_group();
  for (int64_t n = 0; n < g.batch; ++n)
    for (int64_t oc = 0; oc < g.out_channels; ++oc) {
      const int64_t group = oc / cout;
      for (int64_t oh = 0; oh < g.out_h; ++oh)
        for (int64_t ow = 0; ow < g.out_w; ++ow) {
          const int64_t out_index = ((n * g.out_channels + oc) * g.out_h + oh) * g.out_w + ow;
          for (int64_t ic = 0; ic < cin; ++ic)
            for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
              const int64_t ih = g.in_row(oh, kh);
              if (ih < 0 || ih >= g.in_h) continue;
              for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
                const int64_t iw = g.in_col(ow, kw);
                if (iw < 0 || iw >= g.in_w) continue;
                const int64_t in_index = ((n * g.in_channels + group * cin + ic) * g.in_h + ih) * g.in_w + iw;
                const int64_t w_index = ((oc * cin + ic) * g.kernel_h + kh) * g.kernel_w + kw;
                fn(in_index, w_index, out_index);
              }
            }
        }
    }
}

// y = conv(x, w) + bias (bias may be null)
inline void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias,
                           float* y) {
  const int64_t out_numel = g.batch * g.out_channels * g.out_plane();
  std::vector<double> acc(out_numel, 0.0);
  conv2d_for_each_tap(g, [&](int64_t i, int64_t k, int64_t o) { acc[o] += static_cast<double>(x[i]) * w[k]; });
  for (int64_t o = 0; o < out_numel; ++o) {
    const int64_t oc = (o / g.out_plane()) % g.out_channels;
    y[o] = static_cast<float>(acc[o] + (bias ? bias[oc] : 0.0f));
  }
}

// dx = d(sum(dy * y)) / dx  (overwrites dx)
inline void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
  std::vector<double> acc(g.batch * g.in_channels * g.in_h * g.in_w, 0.0);
  conv2d_for_each_tap(g, [&](int64_t i, int64_t k, int64_t o) { acc[i] += static_cast<double>(dy[o]) * w[k]; });
  for (size_t i = 0; i < acc.size(); ++i) dx[i] = static_cast<float>(acc[i]);
}

// dw = d(sum(dy * y)) / dw  (overwrites dw)
inline void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
  std::vector<double> acc(g.out_channels * g.patch_size(), 0.0);
  conv2d_for_each_tap(g, [&](int64_t i, int64_t k, int64_t o) { acc[k] += static_cast<double>(dy[o]) * x[i]; });
  for (size_t k = 0; k < acc.size(); ++k) dw[k] = static_cast<float>(acc[k]);
}

}  // namespace ref
}  // namespace pdyolo::kernels
