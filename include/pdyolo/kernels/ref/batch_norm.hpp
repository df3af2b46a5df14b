// Reference batch normalisation over x [batch, channels, plane] (plane = H·W), per channel.
#pragma once
#include <cmath>
#include <cstdint>
#include <vector>

#include "pdyolo/kernels/activation.hpp"

namespace pdyolo::kernels::ref {

// Batch mean and biased variance of each channel.
inline void batch_norm_stats(int64_t batch, int64_t channels, int64_t plane, const float* x,
                             float* mean, float* var) {
  const double count = static_cast<double>(batch * plane);
  for (int64_t c = 0; c < channels; ++c) {
    double s = 0.0, s2 = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) s += p[i];
    }
    const double m = s / count;
    for (int64_t n = 0; n < batch; ++n) {
      const float* p = x + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) s2 += (p[i] - m) * (p[i] - m);
    }
    mean[c] = static_cast<float>(m);
    var[c] = static_cast<float>(s2 / count);
  }
}

// y = (x - mean) / sqrt(var + eps) * weight + bias
inline void batch_norm_apply(int64_t batch, int64_t channels, int64_t plane, const float* x,
                             const float* mean, const float* var, const float* weight,
                             const float* bias, float eps, float* y) {
  for (int64_t c = 0; c < channels; ++c) {
    const float inv_std = 1.0f / std::sqrt(var[c] + eps);
    const float scale = weight[c] * inv_std;
    const float shift = bias[c] - mean[c] * scale;
    for (int64_t n = 0; n < batch; ++n) {
      const float* in = x + (n * channels + c) * plane;
      float* out = y + (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) out[i] = in[i] * scale + shift;
    }
  }
}

// Gradients of batch_norm_apply. With batch statistics (training) the mean and variance depend
// on x too, which adds the two correction terms; with running statistics they are constants.
inline void batch_norm_backward(int64_t batch, int64_t channels, int64_t plane, const float* x,
                                const float* mean, const float* var, const float* weight, float eps,
                                const float* dy, bool batch_stats, float* dx, float* dweight,
                                float* dbias) {
  const double count = static_cast<double>(batch * plane);
  for (int64_t c = 0; c < channels; ++c) {
    const double inv_std = 1.0 / std::sqrt(static_cast<double>(var[c]) + eps);
    double sum_dy = 0.0, sum_dy_xhat = 0.0;
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t base = (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        sum_dy += dy[base + i];
        sum_dy_xhat += dy[base + i] * (x[base + i] - mean[c]) * inv_std;
      }
    }
    dbias[c] = static_cast<float>(sum_dy);
    dweight[c] = static_cast<float>(sum_dy_xhat);
    for (int64_t n = 0; n < batch; ++n) {
      const int64_t base = (n * channels + c) * plane;
      for (int64_t i = 0; i < plane; ++i) {
        double g = dy[base + i];
        if (batch_stats) {
          const double xhat = (x[base + i] - mean[c]) * inv_std;
          g -= (sum_dy + xhat * sum_dy_xhat) / count;
        }
        dx[base + i] = static_cast<float>(g * weight[c] * inv_std);
      }
    }
  }
}

// act(batch_norm_apply(x)): the two one after the other.
inline void batch_norm_act_forward(int64_t batch, int64_t channels, int64_t plane, const float* x, const float* mean,
                                   const float* var, const float* weight, const float* bias, float eps, ActivationFn act,
                                   float* y) {
  batch_norm_apply(batch, channels, plane, x, mean, var, weight, bias, eps, y);
  with_activation(act, [&](auto f, auto) {
    for (int64_t i = 0; i < batch * channels * plane; ++i) y[i] = f(y[i]);
  });
}

// Gradients of batch_norm_act_forward: dz = dy · act'(z) with z = batch_norm_apply(x) recomputed,
// then batch_norm_backward. dy's images lie dy_image_stride floats apart.
inline void batch_norm_act_backward(int64_t batch, int64_t channels, int64_t plane, const float* x, const float* mean,
                                    const float* var, const float* weight, const float* bias, float eps, ActivationFn act,
                                    const float* dy, int64_t dy_image_stride, bool batch_stats, float* dx, float* dweight,
                                    float* dbias) {
  const int64_t image = channels * plane;
  std::vector<float> z(static_cast<size_t>(batch * image)), dz(z.size());
  batch_norm_apply(batch, channels, plane, x, mean, var, weight, bias, eps, z.data());
  with_activation(act, [&](auto, auto derivative) {
    for (int64_t n = 0; n < batch; ++n)
      for (int64_t i = 0; i < image; ++i) dz[n * image + i] = dy[n * dy_image_stride + i] * derivative(z[n * image + i]);
  });
  batch_norm_backward(batch, channels, plane, x, mean, var, weight, eps, dz.data(), batch_stats, dx, dweight, dbias);
}

}  // namespace pdyolo::kernels::ref
