// Activations in the integer model: a 256-entry table from the input's uint8 levels to the output's,
// table[q] = quantize(f(dequantize(q, in)), out) — exact to f's definition at every level the input
// can hold, with the scheme's rounding (kernels/int8_scheme.hpp). The graph's activations (SiLU, LeakyReLU with
// its slope, ReLU, identity) and the sigmoid of the detect head.
#pragma once
#include <array>
#include <cmath>
#include <cstdint>

#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/int8_scheme.hpp"

namespace pdyolo::quant {

using ActivationTable = std::array<uint8_t, 256>;

// table[q] = quantize(f(dequantize(q, in)), out), f evaluated in double so that the table does not
// inherit float rounding.
template <class F>
ActivationTable table_of(F f, QParams in, QParams out) {
  ActivationTable table{};
  for (int32_t q = 0; q < 256; ++q) {
    const double x = static_cast<double>(q - in.zero_point) * static_cast<double>(in.scale);
    const int64_t y = round_half_even(f(x) / static_cast<double>(out.scale)) + out.zero_point;
    table[static_cast<size_t>(q)] = static_cast<uint8_t>(std::clamp<int64_t>(y, kActivationMin, kActivationMax));
  }
  return table;
}

// The activation a conv block ends with (kernels::ActivationFn: kind and LeakyReLU's slope).
inline ActivationTable activation_table(const kernels::ActivationFn& a, QParams in, QParams out) {
  const double slope = a.slope;
  switch (a.kind) {
    case Activation::identity: return table_of([](double x) { return x; }, in, out);
    case Activation::silu: return table_of([](double x) { return x / (1.0 + std::exp(-x)); }, in, out);
    case Activation::leaky_relu: return table_of([slope](double x) { return x >= 0 ? x : slope * x; }, in, out);
    case Activation::relu: return table_of([](double x) { return x >= 0 ? x : 0.0; }, in, out);
  }
  throw_error("quant: no table for this activation");
}

inline ActivationTable sigmoid_table(QParams in, QParams out) {
  return table_of([](double x) { return 1.0 / (1.0 + std::exp(-x)); }, in, out);
}

}  // namespace pdyolo::quant
