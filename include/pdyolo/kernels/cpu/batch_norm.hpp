// Fast batch normalisation over x [batch, channels, plane] with the following activation fused in:
// one pass writes act(x·scale + shift); the backward pass recomputes the pre-activation from x
// instead of storing it. Channels (statistics, backward) or planes (forward) run in parallel;
// inner loops accumulate in 16 float lanes (vectorisable) and combine per plane in double.
#pragma once
#include <cmath>
#include <cstdint>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/activation.hpp"

namespace pdyolo::kernels::cpu {

constexpr int kLanes = 16;

// Σ term(i) for i in [0, n), in float lanes, returned as double.
template <class Term>
double lane_sum(int64_t n, const Term& term) {
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes)
    for (int l = 0; l < kLanes; ++l) acc[l] += term(i + l);
  double s = 0.0;
  for (; i < n; ++i) s += term(i);
  for (float a : acc) s += a;
  return s;
}

// Batch mean and biased variance of each channel (two passes, as the reference).
inline void batch_norm_stats(int64_t batch, int64_t channels, int64_t plane, const float* x, float* mean, float* var) {
  const double count = static_cast<double>(batch * plane);
  parallel_for(0, channels, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      double s = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        const float* p = x + (n * channels + c) * plane;
        s += lane_sum(plane, [p](int64_t i) { return p[i]; });
      }
      const float m = static_cast<float>(s / count);
      double s2 = 0.0;
      for (int64_t n = 0; n < batch; ++n) {
        const float* p = x + (n * channels + c) * plane;
        s2 += lane_sum(plane, [p, m](int64_t i) { return (p[i] - m) * (p[i] - m); });
      }
      mean[c] = m;
      var[c] = static_cast<float>(s2 / count);
    }
  });
}

// y = act((x − mean) / sqrt(var + eps) · weight + bias)
inline void batch_norm_act_forward(int64_t batch, int64_t channels, int64_t plane, const float* x, const float* mean,
                                   const float* var, const float* weight, const float* bias, float eps, ActivationFn act,
                                   float* y) {
  with_activation(act, [&](auto activation, auto) {
    parallel_for(0, batch * channels, 1, [&](int64_t lo, int64_t hi) {
      const auto f = activation;  // a local copy: its constants stay in registers (see below)
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t c = p % channels;
        const float inv_std = 1.0f / std::sqrt(var[c] + eps);  // as the reference rounds it
        const float scale = weight[c] * inv_std;
        const float shift = bias[c] - mean[c] * scale;
        const float* in = x + p * plane;
        float* out = y + p * plane;
        for (int64_t i = 0; i < plane; ++i) out[i] = f(in[i] * scale + shift);
      }
    });
  });
}

// Gradients of batch_norm_act_forward: dz = dy · act'(z) with z recomputed from x, then the batch
// norm gradients (with batch statistics the mean and variance depend on x, adding two terms).
// dy's images lie dy_image_stride floats apart (channels · plane when dense; more where dy is a
// slice of concat's gradient, read in place).
inline void batch_norm_act_backward(int64_t batch, int64_t channels, int64_t plane, const float* x, const float* mean,
                                    const float* var, const float* weight, const float* bias, float eps,
                                    ActivationFn act, const float* dy, int64_t dy_image_stride, bool batch_stats,
                                    float* dx, float* dweight, float* dbias) {
  const double count = static_cast<double>(batch * plane);
  with_activation(act, [&](auto, auto derivative) {
    parallel_for(0, channels, 1, [&](int64_t lo, int64_t hi) {
      // A local copy: read through the reference, the slope of leaky_relu could alias the float
      // stores, would be reloaded on one branch only, and the loops would not vectorise.
      const auto df = derivative;
      for (int64_t c = lo; c < hi; ++c) {
        const float inv_std = 1.0f / std::sqrt(var[c] + eps);
        const float scale = weight[c] * inv_std, shift = bias[c] - mean[c] * scale, m = mean[c];
        double sum_dz = 0.0, sum_dz_centered = 0.0;
        for (int64_t n = 0; n < batch; ++n) {
          const float* xp = x + (n * channels + c) * plane;
          const float* gp = dy + n * dy_image_stride + c * plane;
          double acc_dz[kLanes] = {}, acc_centered[kLanes] = {};
          int64_t i = 0;
          for (; i + kLanes <= plane; i += kLanes)
            for (int l = 0; l < kLanes; ++l) {
              const float dz = gp[i + l] * df(xp[i + l] * scale + shift);
              acc_dz[l] += dz;
              acc_centered[l] += dz * (xp[i + l] - m);
            }
          for (; i < plane; ++i) {
            const float dz = gp[i] * df(xp[i] * scale + shift);
            sum_dz += dz;
            sum_dz_centered += dz * (xp[i] - m);
          }
          for (int l = 0; l < kLanes; ++l) sum_dz += acc_dz[l], sum_dz_centered += acc_centered[l];
        }
        const double sum_dz_xhat = sum_dz_centered * inv_std;
        dbias[c] = static_cast<float>(sum_dz);
        dweight[c] = static_cast<float>(sum_dz_xhat);
        const float mean_dz = batch_stats ? static_cast<float>(sum_dz / count) : 0.0f;
        const float mean_dz_xhat = batch_stats ? static_cast<float>(sum_dz_xhat / count) : 0.0f;
        for (int64_t n = 0; n < batch; ++n) {
          const float* xp = x + (n * channels + c) * plane;
          const float* gp = dy + n * dy_image_stride + c * plane;
          float* out = dx + (n * channels + c) * plane;
          for (int64_t i = 0; i < plane; ++i) {
            const float dz = gp[i] * df(xp[i] * scale + shift);
            const float xhat = (xp[i] - m) * inv_std;
            out[i] = scale * (dz - mean_dz - xhat * mean_dz_xhat);
          }
        }
      }
    });
  });
}

}  // namespace pdyolo::kernels::cpu
