// Elementwise ops. Each op states its math once, as a scalar lambda for the forward value and one
// for the gradient, side by side; kernels/ref and kernels/cpu only decide how elements are visited.
#pragma once
#include <cmath>

#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/kernels/cpu/elementwise.hpp"
#include "pdyolo/kernels/ref/elementwise.hpp"
#include "pdyolo/ops/shape.hpp"

namespace pdyolo {

namespace ops::detail {

// out[broadcast shape] = f(a, b), no autograd.
template <class F>
Tensor binary_map(const Tensor& a_in, const Tensor& b_in, const char* op, F f) {
  const Tensor a = dense(a_in, op), b = dense(b_in, op);
  const Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor out = Tensor::empty(shape);
  run_on(select_backend(OpKind::binary, DType::f32), OpKind::binary, [&](auto k) {
    if (a.shape() == b.shape()) {
      k.map2(out.numel(), a.data<float>(), b.data<float>(), out.data<float>(), f);
    } else {
      const Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
      k.broadcast_map2(shape, a.data<float>(), sa, b.data<float>(), sb, out.data<float>(), f);
    }
  });
  return out;
}

// y = f(x), no autograd.
template <class F>
Tensor unary_map(const Tensor& x_in, const char* op, F f) {
  const Tensor x = dense(x_in, op);
  Tensor y = Tensor::empty(x.shape());
  run_on(select_backend(OpKind::unary, DType::f32), OpKind::unary, [&](auto k) { k.map1(x.numel(), x.data<float>(), y.data<float>(), f); });
  return y;
}

// out = f(a, b, c) for three tensors of one shape, no autograd.
template <class F>
Tensor ternary_map(const Tensor& a_in, const Tensor& b_in, const Tensor& c_in, const char* op, F f) {
  const Tensor a = dense(a_in, op), b = dense(b_in, op), c = dense(c_in, op);
  PDYOLO_CHECK(a.shape() == b.shape() && a.shape() == c.shape(), op, ": shapes ", shape_str(a.shape()),
               ", ", shape_str(b.shape()), " and ", shape_str(c.shape()), " differ");
  Tensor out = Tensor::empty(a.shape());
  run_on(select_backend(OpKind::unary, DType::f32), OpKind::unary,
         [&](auto k) { k.map3(a.numel(), a.data<float>(), b.data<float>(), c.data<float>(), out.data<float>(), f); });
  return out;
}

// A differentiable unary op: forward(x) → y and grad(x, y, dy) → dx.
template <class Forward, class Grad>
Tensor unary_op(const Tensor& x, const char* op, Forward forward, Grad grad) {
  Tensor y = unary_map(x, op, forward);
  return autograd::record(y, op, {x}, [xs = x.detach(), ys = y.detach(), grad, op](const Tensor& g) {
    return std::vector<Tensor>{ternary_map(xs, ys, g, op, grad)};
  });
}

}  // namespace ops::detail

// ---- binary ops with broadcasting --------------------------------------------------------------

inline Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "add", [](float x, float y) { return x + y; });
  return autograd::record(out, "add", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(g, sa), sum_to(g, sb)};
  });
}

inline Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "sub", [](float x, float y) { return x - y; });
  return autograd::record(out, "sub", {a, b}, [sa = a.shape(), sb = b.shape()](const Tensor& g) {
    Tensor neg_g = ops::detail::unary_map(g, "sub", [](float v) { return -v; });
    return std::vector<Tensor>{sum_to(g, sa), sum_to(neg_g, sb)};
  });
}

inline Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "mul", [](float x, float y) { return x * y; });
  return autograd::record(out, "mul", {a, b}, [ad = a.detach(), bd = b.detach()](const Tensor& g) {
    return std::vector<Tensor>{sum_to(mul(g, bd), ad.shape()), sum_to(mul(g, ad), bd.shape())};
  });
}

inline Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = ops::detail::binary_map(a, b, "div", [](float x, float y) { return x / y; });
  return autograd::record(out, "div", {a, b}, [ad = a.detach(), bd = b.detach(), od = out.detach()](const Tensor& g) {
    Tensor g_over_b = div(g, bd);  // d(a/b)/da = 1/b;  d(a/b)/db = -(a/b)/b
    Tensor gb = ops::detail::binary_map(g_over_b, od, "div", [](float gb_, float q) { return -gb_ * q; });
    return std::vector<Tensor>{sum_to(g_over_b, ad.shape()), sum_to(gb, bd.shape())};
  });
}

namespace ops::detail {
// Elementwise min/max: the gradient goes to the selected input; ties split it evenly.
template <bool kMax>
Tensor select_op(const Tensor& a, const Tensor& b, const char* op) {
  Tensor out = binary_map(a, b, op, [](float x, float y) { return kMax ? (x > y ? x : y) : (x < y ? x : y); });
  return autograd::record(out, op, {a, b}, [ad = a.detach(), bd = b.detach(), op](const Tensor& g) {
    Tensor share_a = binary_map(ad, bd, op, [](float x, float y) {
      return x == y ? 0.5f : ((kMax ? x > y : x < y) ? 1.0f : 0.0f);
    });
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

inline Tensor neg(const Tensor& x) {
  return ops::detail::unary_op(x, "neg", [](float v) { return -v; }, [](float, float, float g) { return -g; });
}
inline Tensor operator-(const Tensor& x) { return neg(x); }

inline Tensor exp(const Tensor& x) {
  return ops::detail::unary_op(x, "exp", [](float v) { return std::exp(v); },
                               [](float, float y, float g) { return g * y; });
}
inline Tensor log(const Tensor& x) {
  return ops::detail::unary_op(x, "log", [](float v) { return std::log(v); },
                               [](float v, float, float g) { return g / v; });
}
inline Tensor sqrt(const Tensor& x) {
  return ops::detail::unary_op(x, "sqrt", [](float v) { return std::sqrt(v); },
                               [](float, float y, float g) { return g * 0.5f / y; });
}
inline Tensor abs(const Tensor& x) {
  return ops::detail::unary_op(x, "abs", [](float v) { return std::fabs(v); },
                               [](float v, float, float g) { return v > 0.0f ? g : (v < 0.0f ? -g : 0.0f); });
}
inline Tensor sigmoid(const Tensor& x) {
  return ops::detail::unary_op(x, "sigmoid", kernels::sigmoid_of,
                               [](float, float y, float g) { return g * y * (1.0f - y); });
}
inline Tensor tanh(const Tensor& x) {
  return ops::detail::unary_op(x, "tanh", [](float v) { return std::tanh(v); },
                               [](float, float y, float g) { return g * (1.0f - y * y); });
}
inline Tensor atan(const Tensor& x) {
  return ops::detail::unary_op(x, "atan", [](float v) { return std::atan(v); },
                               [](float v, float, float g) { return g / (1.0f + v * v); });
}
inline Tensor relu(const Tensor& x) {
  return ops::detail::unary_op(x, "relu", [](float v) { return v > 0.0f ? v : 0.0f; },
                               [](float v, float, float g) { return v > 0.0f ? g : 0.0f; });
}
inline Tensor leaky_relu(const Tensor& x, float slope = 0.01f) {
  return ops::detail::unary_op(x, "leaky_relu", [slope](float v) { return v > 0.0f ? v : v * slope; },
                               [slope](float v, float, float g) { return v > 0.0f ? g : g * slope; });
}
// SiLU (swish): x · sigmoid(x); its derivative is s · (1 + x · (1 − s)).
inline Tensor silu(const Tensor& x) {
  return ops::detail::unary_op(x, "silu", [](float v) { return v * kernels::sigmoid_of(v); },
                               [](float v, float, float g) {
                                 const float s = kernels::sigmoid_of(v);
                                 return g * s * (1.0f + v * (1.0f - s));
                               });
}
inline Tensor pow(const Tensor& x, float exponent) {
  return ops::detail::unary_op(x, "pow", [exponent](float v) { return std::pow(v, exponent); },
                               [exponent](float v, float, float g) {
                                 return exponent == 0.0f ? 0.0f : g * exponent * std::pow(v, exponent - 1.0f);
                               });
}
// Clamps into [low, high]; the gradient passes where low <= x <= high (as PyTorch).
inline Tensor clamp(const Tensor& x, float low, float high) {
  PDYOLO_CHECK(low <= high, "clamp: low ", low, " is greater than high ", high);
  return ops::detail::unary_op(x, "clamp", [low, high](float v) { return v < low ? low : (v > high ? high : v); },
                               [low, high](float v, float, float g) { return (v >= low && v <= high) ? g : 0.0f; });
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
