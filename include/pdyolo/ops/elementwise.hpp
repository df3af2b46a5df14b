// Elementwise ops. Each names its map as plain data — kernels::UnaryMap / BinaryMap / TernaryMap
// and their parameters — whose math (forward and gradient side by side) is stated once in
// kernels/elementwise_maps.hpp; the backend's kernels decide how elements are visited.
#pragma once
#include <cmath>

#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/elementwise_maps.hpp"
#include "pdyolo/ops/shape.hpp"

namespace pdyolo {

namespace ops::detail {

using kernels::BinaryMap;
using kernels::MapParams;
using kernels::TernaryMap;
using kernels::UnaryMap;

// out[broadcast shape] = map(a, b), no autograd.
inline Tensor binary_map(const Tensor& a_in, const Tensor& b_in, const char* op, BinaryMap map, MapParams p = {}) {
  const Tensor a = dense(a_in, op), b = dense(b_in, op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape);
  run_on(select_backend(OpKind::binary, DType::f32), OpKind::binary, [&](auto k) {
    if (a.shape() == b.shape()) {
      k.binary(map, p, out.numel(), a.data<float>(), b.data<float>(), out.data<float>());
    } else {
      const Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
      k.broadcast_binary(map, p, shape, a.data<float>(), sa, b.data<float>(), sb, out.data<float>());
    }
  });
  return out;
}

// y = map(x), no autograd.
inline Tensor unary_map(const Tensor& x_in, const char* op, UnaryMap map, MapParams p = {}) {
  const Tensor x = dense(x_in, op);
  Tensor y = Tensor::empty(x.shape());
  run_on(select_backend(OpKind::unary, DType::f32), OpKind::unary, [&](auto k) { k.unary(map, p, x.numel(), x.data<float>(), y.data<float>()); });
  return y;
}

namespace internal {
// out = kernel(k, n, a, b, c, out) over three tensors of one shape on the unary kernels' backend, no autograd.
template <class Kernel>
Tensor three_input_map(const Tensor& a_in, const Tensor& b_in, const Tensor& c_in, const char* op, const Kernel& kernel) {
  const Tensor a = dense(a_in, op), b = dense(b_in, op), c = dense(c_in, op);
  PDYOLO_CHECK(a.shape() == b.shape() && a.shape() == c.shape(), op, ": shapes ", shape_str(a.shape()), ", ", shape_str(b.shape()), " and ",
               shape_str(c.shape()), " differ");
  Tensor out = Tensor::empty(a.shape());
  run_on(select_backend(OpKind::unary, DType::f32), OpKind::unary,
         [&](auto k) { kernel(k, a.numel(), a.data<float>(), b.data<float>(), c.data<float>(), out.data<float>()); });
  return out;
}
}  // namespace internal

// dx = map's gradient from (x, y, dy) for three tensors of one shape, no autograd.
inline Tensor unary_grad_map(const Tensor& x, const Tensor& y, const Tensor& dy, const char* op, UnaryMap map, MapParams p) {
  return internal::three_input_map(x, y, dy, op, [&](auto k, int64_t n, const float* xs, const float* ys, const float* g, float* dx) {
    k.unary_grad(map, p, n, xs, ys, g, dx);
  });
}

// out = map(a, b, c) for three tensors of one shape, no autograd.
inline Tensor ternary_map(const Tensor& a, const Tensor& b, const Tensor& c, const char* op, TernaryMap map, MapParams p) {
  return internal::three_input_map(a, b, c, op, [&](auto k, int64_t n, const float* x, const float* y, const float* z, float* out) {
    k.ternary(map, p, n, x, y, z, out);
  });
}

// A differentiable unary op: y = map(x), its gradient from (x, y, dy).
inline Tensor unary_op(const Tensor& x, const char* op, UnaryMap map, MapParams p = {}) {
  Tensor y = unary_map(x, op, map, p);
  return autograd::record(y, op, {x}, [xs = x.detach(), ys = y.detach(), map, p, op](const Tensor& g) {
    return std::vector<Tensor>{unary_grad_map(xs, ys, g, op, map, p)};
  });
}

}  // namespace ops::detail

// ---- binary ops with broadcasting --------------------------------------------------------------

inline Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "add", kernels::BinaryMap::add);
  return autograd::record(out, "add", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
  });
}

inline Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "sub", kernels::BinaryMap::sub);
  return autograd::record(out, "sub", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    Tensor neg_g = ops::detail::unary_map(g, "sub", kernels::UnaryMap::neg);
    return std::vector<Tensor>{sum_to(g, sa), sum_to(neg_g, sb)};
  });
}

inline Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "mul", kernels::BinaryMap::mul);
  return autograd::record(out, "mul", {a, b}, [ad = a.detach(), bd = b.detach()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(mul(g, bd), ad.shape()), sum_to(mul(g, ad), bd.shape())};
  });
}

inline Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "div", kernels::BinaryMap::div);
  return autograd::record(out, "div", {a, b}, [ad = a.detach(), bd = b.detach(), od = out.detach()](const Tensor& g) {
    Tensor g_over_b = div(g, bd);  // d(a/b)/da = 1/b;  d(a/b)/db = -(a/b)/b
    Tensor gb = ops::detail::binary_map(g_over_b, od, "div", kernels::BinaryMap::neg_mul);
    return std::vector<Tensor>{sum_to(g_over_b, ad.shape()), sum_to(gb, bd.shape())};
  });
}

namespace ops::detail {
// Elementwise min/max: the gradient goes to the selected input; ties split it evenly.
template <bool kMax>
Tensor select_op(const Tensor& a, const Tensor& b, const char* op) {
  Tensor out = binary_map(a, b, op, kMax ? BinaryMap::maximum : BinaryMap::minimum);
  return autograd::record(out, op, {a, b}, [ad = a.detach(), bd = b.detach(), op](const Tensor& g) {
    Tensor share_a = binary_map(ad, bd, op, kMax ? BinaryMap::max_share : BinaryMap::min_share);
    Tensor ga = mul(g, share_a);
    Tensor gb = sub(g, ga);
    return std::vector<Tensor>{sum_to(ga, ad.shape()), sum_to(gb, bd.shape())};
  });
}
}  // namespace ops::detail

inline Tensor maximum(const Tensor& a, const Tensor& b) { return ops::detail::select_op<true>(a, b, "maximum"); }
inline Tensor minimum(const Tensor& a, const Tensor& b) { return ops::detail::select_op<false>(a, b, "minimum"); }

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator+(const Tensor& a, float s) { return add(a, Tensor::scalar(s)); }
inline Tensor operator-(const Tensor& a, float s) { return sub(a, Tensor::scalar(s)); }
inline Tensor operator*(const Tensor& a, float s) { return mul(a, Tensor::scalar(s)); }
inline Tensor operator/(const Tensor& a, float s) { return div(a, Tensor::scalar(s)); }
inline Tensor operator+(float s, const Tensor& a) { return add(Tensor::scalar(s), a); }
inline Tensor operator-(float s, const Tensor& a) { return sub(Tensor::scalar(s), a); }
inline Tensor operator*(float s, const Tensor& a) { return mul(Tensor::scalar(s), a); }
inline Tensor operator/(float s, const Tensor& a) { return div(Tensor::scalar(s), a); }

// ---- unary ops ---------------------------------------------------------------------------------

inline Tensor neg(const Tensor& x) { return ops::detail::unary_op(x, "neg", kernels::UnaryMap::neg); }
inline Tensor operator-(const Tensor& x) { return neg(x); }

inline Tensor exp(const Tensor& x) { return ops::detail::unary_op(x, "exp", kernels::UnaryMap::exp); }
inline Tensor log(const Tensor& x) { return ops::detail::unary_op(x, "log", kernels::UnaryMap::log); }
inline Tensor sqrt(const Tensor& x) { return ops::detail::unary_op(x, "sqrt", kernels::UnaryMap::sqrt); }
inline Tensor abs(const Tensor& x) { return ops::detail::unary_op(x, "abs", kernels::UnaryMap::abs); }
inline Tensor sigmoid(const Tensor& x) { return ops::detail::unary_op(x, "sigmoid", kernels::UnaryMap::sigmoid); }
inline Tensor tanh(const Tensor& x) { return ops::detail::unary_op(x, "tanh", kernels::UnaryMap::tanh); }
inline Tensor atan(const Tensor& x) { return ops::detail::unary_op(x, "atan", kernels::UnaryMap::atan); }
inline Tensor relu(const Tensor& x) { return ops::detail::unary_op(x, "relu", kernels::UnaryMap::relu); }
inline Tensor leaky_relu(const Tensor& x, float slope = 0.01f) {
  return ops::detail::unary_op(x, "leaky_relu", kernels::UnaryMap::leaky_relu, {slope});
}
// SiLU (swish): x · sigmoid(x).
inline Tensor silu(const Tensor& x) { return ops::detail::unary_op(x, "silu", kernels::UnaryMap::silu); }
inline Tensor pow(const Tensor& x, float exponent) { return ops::detail::unary_op(x, "pow", kernels::UnaryMap::pow, {exponent}); }
// Clamps into [low, high]; the gradient passes where low <= x <= high (as PyTorch).
inline Tensor clamp(const Tensor& x, float low, float high) {
  PDYOLO_CHECK(low <= high, "clamp: low ", low, " is greater than high ", high);
  return ops::detail::unary_op(x, "clamp", kernels::UnaryMap::clamp, {low, high});
}

// The activation as an op of its own (with gradient).
inline Tensor activation(const Tensor& x, kernels::ActivationFn a) {
  switch (a.kind) {
    case Activation::silu: return silu(x);
    case Activation::leaky_relu: return leaky_relu(x, a.slope);
    case Activation::relu: return relu(x);
    case Activation::identity: return x;
  }
  return x;
}

}  // namespace pdyolo
