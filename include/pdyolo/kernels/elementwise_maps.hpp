// The elementwise maps, as plain data: an enum naming the map and up to two float parameters. That
// is what a backend's elementwise entries receive (backend/dispatch.hpp: unary, unary_grad, binary,
// broadcast_binary, ternary) — never a C++ functor — so that any backend, a device one included, can
// implement them. Each map's math is stated once, here, as a scalar function: with_unary & co. call
// `body` with it, so that the reference and CPU loops are instantiated (and vectorised) per map.
#pragma once
#include <cmath>

#include "pdyolo/kernels/activation.hpp"

namespace pdyolo::kernels {

// y = f(x); its gradient dx = f'(x, y) · dy (UnaryMap again, through with_unary_grad).
enum class UnaryMap { neg, exp, log, sqrt, abs, sigmoid, tanh, atan, relu, leaky_relu, silu, pow, clamp };
// out = f(a, b), broadcasting.
enum class BinaryMap {
  add, sub, mul, div, minimum, maximum,
  neg_mul,       // −a·b (the quotient's gradient)
  max_share,     // the share of the gradient a maximum gives its first input: 1, ½ on ties, 0
  min_share,     // the same for a minimum
  bce_with_logits,  // (x, t) → PyTorch's BCEWithLogitsLoss, pos_weight p.a
  kl_div,           // (x, t) → t·(log t − x), 0 where t = 0; with p.a ≠ 0, t is a log-probability
};
// out = f(a, b, c) over three tensors of one shape: the losses' gradients, from (x, t, dy).
enum class TernaryMap { bce_with_logits_dx, bce_with_logits_dt, kl_div_dx, kl_div_dt };

struct MapParams {
  float a = 0.0f, b = 0.0f;  // leaky_relu: slope; pow: exponent; clamp: low, high; bce: pos_weight; kl_div: log_target
};

// softplus(v) = log(1 + e^v), without overflow.
inline float softplus_of(float v) { return std::max(v, 0.0f) + std::log1p(std::exp(-std::fabs(v))); }

template <class Body>
void with_unary(UnaryMap op, MapParams p, const Body& body) {
  switch (op) {
    case UnaryMap::neg: return body([](float v) { return -v; });
    case UnaryMap::exp: return body([](float v) { return std::exp(v); });
    case UnaryMap::log: return body([](float v) { return std::log(v); });
    case UnaryMap::sqrt: return body([](float v) { return std::sqrt(v); });
    case UnaryMap::abs: return body([](float v) { return std::fabs(v); });
    case UnaryMap::sigmoid: return body([](float v) { return sigmoid_of(v); });
    case UnaryMap::tanh: return body([](float v) { return std::tanh(v); });
    case UnaryMap::atan: return body([](float v) { return std::atan(v); });
    case UnaryMap::relu: return body([](float v) { return v > 0.0f ? v : 0.0f; });
    case UnaryMap::leaky_relu: return body([slope = p.a](float v) { return v > 0.0f ? v : v * slope; });
    case UnaryMap::silu: return body([](float v) { return v * sigmoid_of(v); });
    case UnaryMap::pow: return body([exponent = p.a](float v) { return std::pow(v, exponent); });
    case UnaryMap::clamp: return body([low = p.a, high = p.b](float v) { return v < low ? low : (v > high ? high : v); });
  }
}

// body(g) with g(x, y, dy) = dx, the gradient of the unary map (y = f(x)).
template <class Body>
void with_unary_grad(UnaryMap op, MapParams p, const Body& body) {
  switch (op) {
    case UnaryMap::neg: return body([](float, float, float g) { return -g; });
    case UnaryMap::exp: return body([](float, float y, float g) { return g * y; });
    case UnaryMap::log: return body([](float v, float, float g) { return g / v; });
    case UnaryMap::sqrt: return body([](float, float y, float g) { return g * 0.5f / y; });
    case UnaryMap::abs: return body([](float v, float, float g) { return v > 0.0f ? g : (v < 0.0f ? -g : 0.0f); });
    case UnaryMap::sigmoid: return body([](float, float y, float g) { return g * y * (1.0f - y); });
    case UnaryMap::tanh: return body([](float, float y, float g) { return g * (1.0f - y * y); });
    case UnaryMap::atan: return body([](float v, float, float g) { return g / (1.0f + v * v); });
    case UnaryMap::relu: return body([](float v, float, float g) { return v > 0.0f ? g : 0.0f; });
    case UnaryMap::leaky_relu: return body([slope = p.a](float v, float, float g) { return v > 0.0f ? g : g * slope; });
    case UnaryMap::silu:  // s · (1 + x · (1 − s))
      return body([](float v, float, float g) {
        const float s = sigmoid_of(v);
        return g * s * (1.0f + v * (1.0f - s));
      });
    case UnaryMap::pow:
      return body([exponent = p.a](float v, float, float g) { return exponent == 0.0f ? 0.0f : g * exponent * std::pow(v, exponent - 1.0f); });
    case UnaryMap::clamp:  // passes where low <= x <= high (as PyTorch)
      return body([low = p.a, high = p.b](float v, float, float g) { return (v >= low && v <= high) ? g : 0.0f; });
  }
}

template <class Body>
void with_binary(BinaryMap op, MapParams p, const Body& body) {
  switch (op) {
    case BinaryMap::add: return body([](float x, float y) { return x + y; });
    case BinaryMap::sub: return body([](float x, float y) { return x - y; });
    case BinaryMap::mul: return body([](float x, float y) { return x * y; });
    case BinaryMap::div: return body([](float x, float y) { return x / y; });
    case BinaryMap::minimum: return body([](float x, float y) { return x < y ? x : y; });
    case BinaryMap::maximum: return body([](float x, float y) { return x > y ? x : y; });
    case BinaryMap::neg_mul: return body([](float x, float y) { return -x * y; });
    case BinaryMap::max_share: return body([](float x, float y) { return x == y ? 0.5f : (x > y ? 1.0f : 0.0f); });
    case BinaryMap::min_share: return body([](float x, float y) { return x == y ? 0.5f : (x < y ? 1.0f : 0.0f); });
    case BinaryMap::bce_with_logits:  // (1 − t)·x + (1 + (pw − 1)·t) · softplus(−x), the stable form
      return body([pw = p.a](float x, float t) { return (1.0f - t) * x + (1.0f + (pw - 1.0f) * t) * softplus_of(-x); });
    case BinaryMap::kl_div:
      if (p.a != 0.0f) return body([](float x, float t) { return std::exp(t) * (t - x); });
      return body([](float x, float t) { return t > 0.0f ? t * (std::log(t) - x) : 0.0f; });
  }
}

template <class Body>
void with_ternary(TernaryMap op, MapParams p, const Body& body) {
  switch (op) {
    case TernaryMap::bce_with_logits_dx:
      return body([pw = p.a](float x, float t, float g) { return g * ((1.0f - t) - (1.0f + (pw - 1.0f) * t) * sigmoid_of(-x)); });
    case TernaryMap::bce_with_logits_dt:
      return body([pw = p.a](float x, float, float g) { return g * (-x + (pw - 1.0f) * softplus_of(-x)); });
    case TernaryMap::kl_div_dx:
      if (p.a != 0.0f) return body([](float, float t, float g) { return -g * std::exp(t); });
      return body([](float, float t, float g) { return -g * t; });
    case TernaryMap::kl_div_dt:
      if (p.a != 0.0f) return body([](float x, float t, float g) { return g * std::exp(t) * (t - x + 1.0f); });
      return body([](float x, float t, float g) { return t > 0.0f ? g * (std::log(t) + 1.0f - x) : 0.0f; });
  }
}

}  // namespace pdyolo::kernels
