// Fake quantization: x → dequantize(quantize(x)) in float, so that a float graph computes what the
// integer model will (quantization-aware training, the simulation the integer runtime is checked
// against). The gradient is the straight-through estimate: 1 where x fell inside the quantizer's
// range, 0 where it was clamped — PyTorch's fake_quantize_per_tensor_affine and
// fake_quantize_per_channel_affine, value for value.
#pragma once
#include <vector>

#include "pdyolo/autograd/node.hpp"
#include "pdyolo/core/tensor.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/kernels/int8_scheme.hpp"

namespace pdyolo::quant {

namespace detail {
// y and the gradient mask of fake quantization with the scale and zero point of each element's
// channel (axis 0 of x viewed as [channels, inner]; one channel for per-tensor).
inline Tensor fake_quant(const Tensor& x_in, const std::vector<float>& scales, const std::vector<int32_t>& zero_points, int32_t qmin,
                         int32_t qmax, const char* op) {
  const Tensor x = contiguous_copy(x_in);
  PDYOLO_CHECK(x.dtype() == DType::f32, op, ": needs an f32 tensor, got ", dtype_name(x.dtype()));
  const int64_t channels = static_cast<int64_t>(scales.size()), inner = channels > 0 ? x.numel() / channels : 0;
  PDYOLO_CHECK(channels == 1 || (x.dim() > 0 && x.shape()[0] == channels), op, ": ", channels, " scales for a tensor of shape ",
               shape_str(x.shape()), " (one per channel of axis 0)");
  Tensor y = Tensor::empty(x.shape()), mask = Tensor::empty(x.shape());
  const float* src = x.data<float>();
  float* dst = y.data<float>();
  float* pass = mask.data<float>();
  for (int64_t c = 0; c < channels; ++c) {
    const float scale = scales[static_cast<size_t>(c)];
    const int32_t zero = zero_points[static_cast<size_t>(c)];
    PDYOLO_CHECK(scale > 0 && std::isfinite(scale), op, ": scale ", scale, " of channel ", c, " is not positive");
    for (int64_t i = c * inner; i < (c + 1) * inner; ++i) {
      const int64_t level = unclamped_level(src[i], scale, zero);
      const bool inside = level >= qmin && level <= qmax;
      dst[i] = static_cast<float>(std::clamp<int64_t>(level, qmin, qmax) - zero) * scale;
      pass[i] = inside ? 1.0f : 0.0f;
    }
  }
  return autograd::record(y, op, {x_in}, [mask](const Tensor& g) { return std::vector<Tensor>{contiguous_copy(g) * mask}; });
}
}  // namespace detail

// A uint8 activation tensor of any shape, per tensor.
inline Tensor fake_quant_activation(const Tensor& x, QParams p) {
  return detail::fake_quant(x, {p.scale}, {p.zero_point}, kActivationMin, kActivationMax, "fake_quant_activation");
}

// Per-output-channel weight scales max|w_c| / 127 of a weight [C_out, ...].
inline std::vector<float> weight_scales(const Tensor& w) {
  const Tensor d = contiguous_copy(w);
  const int64_t channels = d.shape().at(0), inner = d.numel() / std::max<int64_t>(channels, 1);
  std::vector<float> scales(static_cast<size_t>(channels));
  for (int64_t c = 0; c < channels; ++c) {
    float max_abs = 0;
    for (int64_t i = 0; i < inner; ++i) max_abs = std::max(max_abs, std::fabs(d.data<float>()[c * inner + i]));
    scales[static_cast<size_t>(c)] = weight_scale(max_abs);
  }
  return scales;
}

// An int8 weight [C_out, ...], symmetric per output channel, with the given scales.
inline Tensor fake_quant_weight(const Tensor& w, const std::vector<float>& scales) {
  return detail::fake_quant(w, scales, std::vector<int32_t>(scales.size(), 0), -kWeightMax, kWeightMax, "fake_quant_weight");
}

}  // namespace pdyolo::quant
