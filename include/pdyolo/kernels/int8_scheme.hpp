// pdyolo's int8 quantization scheme, stated once; the integer runtime and every int8 kernel compute
// exactly this. It is the specification of namespace quant's arithmetic, and lives in kernels/ so
// that the kernels may include it (no folder includes one above it).
//
//   weights      int8, symmetric, per output channel: q = clamp(round(w · (1/s_c)), −127, 127), zero
//                point 0, s_c = max|w_c| / 127 (−128 unused, so that negating a weight never
//                overflows and the range is the same on both sides).
//   activations  uint8, asymmetric, per tensor: q = clamp(round(x · (1/s)) + z, 0, 255), z ∈ [0, 255]
//                so that real 0 (padding, ReLU's floor) is exactly q = z. Unsigned because x86's
//                VNNI and AMX multiply u8 activations by s8 weights natively (vpdpbusd, tdpbusd);
//                ARM's sdot multiplies s8 by s8, and q − 128 with zero point z − 128 is the same
//                real value, a flip of the top bit. And because the activations YOLO feeds its
//                convs (SiLU ≥ −0.28, LeakyReLU, concatenations of them) are nearly one-sided: a
//                symmetric int8 range would leave most of its negative half unused.
//   bias         int32 at scale s_x · s_c, zero point 0.
//   accumulator  int32: acc_c = bias_c + Σ (q_x − z_x) · q_w (kernels compute Σ q_x · q_w and
//                subtract z_x · Σ q_w, the weight sums precomputed).
//   output       y_q = clamp(z_y + requantize(acc_c, M_c), 0, 255), M_c the fixed-point form of
//                s_x · s_c / s_y (Multiplier below).
//   rounding     float → integer (quantize): to nearest, ties to even (std::nearbyint in the
//                default mode), 1/s and x · (1/s) in float — PyTorch's fake_quantize exactly. Integer
//                requantization: ⌊acc · M / 2^shift + 1/2⌋ — to nearest, ties toward +∞ — computed
//                exactly in 64 bits (one rounding, no double rounding).
//   activations  SiLU, LeakyReLU and sigmoid as 256-entry tables from the input's (s, z) to the
//                output's (quant/lut.hpp): exact to the definition for every representable input.
//   sharing      concat, max-pool, upsample and reorg outputs share their inputs' (s, z) by construction.
//   input        the first conv reads the image's 8-bit pixels: s = 1/255, z = 0.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "pdyolo/core/error.hpp"

namespace pdyolo::quant {

constexpr int32_t kActivationMin = 0, kActivationMax = 255;  // uint8 activations
constexpr int32_t kWeightMax = 127;                          // int8 weights in [−127, 127]

// Scale and zero point of a uint8 activation tensor: x ≈ (q − zero_point) · scale.
struct QParams {
  float scale = 1.0f;
  int32_t zero_point = 0;
};

// Float → integer rounding of the scheme: to nearest, ties to even. Saturating, so that no input
// makes the conversion undefined: beyond ±2^62 (infinities too) the nearer of ±2^62, NaN 0 — far
// outside every range its callers clamp to, and far enough from int64's ends that adding a zero
// point cannot overflow.
inline constexpr int64_t kRoundingLimit = int64_t{1} << 62;
inline int64_t round_half_even(double x) {
  const double r = std::nearbyint(x);
  if (!(r == r)) return 0;
  if (r >= static_cast<double>(kRoundingLimit)) return kRoundingLimit;
  if (r <= -static_cast<double>(kRoundingLimit)) return -kRoundingLimit;
  return static_cast<int64_t>(r);
}

// The scales (activation and weight) a model file may hold: far beyond any real network's on both
// sides, and such that 1/s and 255·s stay finite floats. A file outside them is refused at load.
inline constexpr double kMinScale = 1e-20, kMaxScale = 1e20;
inline bool valid_scale(double s) { return s >= kMinScale && s <= kMaxScale; }  // (false for NaN)

// (s, z) covering [lo, hi] with 256 levels; the range is first widened to hold 0, so that 0 is a
// level. In float, as PyTorch's observers compute them (scale at least float's epsilon).
inline QParams choose_activation_params(float lo, float hi) {
  PDYOLO_CHECK(std::isfinite(lo) && std::isfinite(hi) && lo <= hi, "quant: activation range [", lo, ", ", hi, "] is not a finite interval");
  lo = std::min(lo, 0.0f), hi = std::max(hi, 0.0f);
  const float scale = std::max((hi - lo) / static_cast<float>(kActivationMax - kActivationMin), std::numeric_limits<float>::epsilon());
  const int64_t z = kActivationMin - round_half_even(lo / scale);
  return {scale, static_cast<int32_t>(std::clamp<int64_t>(z, kActivationMin, kActivationMax))};
}

// The level of x before clamping: round(x · (1/s)) with 1/s and the product in float (PyTorch's
// formula, so that ties fall the same way).
inline int64_t unclamped_level(float x, float scale, int32_t zero_point) { return round_half_even(x * (1.0f / scale)) + zero_point; }

inline int32_t quantize_activation(float x, QParams p) {
  return static_cast<int32_t>(std::clamp<int64_t>(unclamped_level(x, p.scale, p.zero_point), kActivationMin, kActivationMax));
}
inline float dequantize_activation(int32_t q, QParams p) { return static_cast<float>(q - p.zero_point) * p.scale; }

// The weight scale of one output channel: max|w| / 127 (1 for an all-zero channel).
inline float weight_scale(float max_abs) { return max_abs > 0.0f ? max_abs / static_cast<float>(kWeightMax) : 1.0f; }

inline int32_t quantize_weight(float w, float scale) {
  return static_cast<int32_t>(std::clamp<int64_t>(unclamped_level(w, scale, 0), -kWeightMax, kWeightMax));
}

// A conv's bias as int32 at scale s_x · s_w (to nearest, ties to even; saturated).
inline int32_t quantize_bias(float bias, float input_scale, float weight_scale) {
  const double step = static_cast<double>(input_scale) * static_cast<double>(weight_scale);
  return static_cast<int32_t>(std::clamp<int64_t>(round_half_even(static_cast<double>(bias) / step), INT32_MIN, INT32_MAX));
}

// A positive real multiplier m as m ≈ value · 2^−shift, value in [2^30, 2^31) (31 significant bits),
// shift in [1, 62] (or value 0 for m < 2^−32): requantize(acc) = ⌊acc · value / 2^shift + 1/2⌋.
struct Multiplier {
  int32_t value = 0;
  int32_t shift = 0;
  double real() const { return std::ldexp(static_cast<double>(value), -shift); }
};

inline Multiplier make_multiplier(double m) {
  PDYOLO_CHECK(std::isfinite(m) && m > 0.0, "quant: requantization multiplier ", m, " is not a positive finite number");
  int exponent = 0;
  const double fraction = std::frexp(m, &exponent);  // m = fraction · 2^exponent, fraction in [0.5, 1)
  int64_t value = static_cast<int64_t>(std::llround(fraction * 2147483648.0));  // · 2^31
  int shift = 31 - exponent;
  if (value == (int64_t{1} << 31)) value >>= 1, --shift;  // the fraction rounded up to 1
  if (shift > 62) return {0, 1};  // m < 2^−32: |acc · m| < 1/2 for every int32, so every output is 0
  PDYOLO_CHECK(shift >= 1, "quant: requantization multiplier ", m, " is too large (at most 2^30)");
  return {static_cast<int32_t>(value), shift};
}

// ⌊acc · M.value / 2^M.shift + 1/2⌋, exactly (|acc · value| < 2^62).
inline int32_t requantize(int32_t acc, Multiplier m) {
  const int64_t product = static_cast<int64_t>(acc) * m.value;
  const int64_t rounded = (product + (int64_t{1} << (m.shift - 1))) >> m.shift;  // arithmetic shift: ⌊·⌋
  return static_cast<int32_t>(std::clamp<int64_t>(rounded, INT32_MIN, INT32_MAX));
}

// The uint8 output of an accumulator: clamp(z_y + requantize(acc), 0, 255).
inline uint8_t requantize_to_u8(int32_t acc, Multiplier m, int32_t zero_point) {
  const int64_t q = static_cast<int64_t>(requantize(acc, m)) + zero_point;
  return static_cast<uint8_t>(std::clamp<int64_t>(q, kActivationMin, kActivationMax));
}

}  // namespace pdyolo::quant
