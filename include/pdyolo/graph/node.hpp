// A graph node: its op, typed attributes, inputs by node index and the tensors it owns. Every
// attribute struct lists its fields once, in `fields`, with their names and valid ranges; the model
// file's reader and writer (serialize.hpp) and validate() (channels.hpp) all walk that one list.
// What each op does — shapes, channels, quantizers — is its row in the op table (graph/ops.hpp).
#pragma once
#include <string>
#include <variant>
#include <vector>

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/kernels/activation.hpp"
#include "pdyolo/nn/module.hpp"

namespace pdyolo::graph {

// The ops, in the order of their rows in the op table (graph/ops.hpp).
enum class Op { input, conv, batch_norm, activation, add, concat, max_pool, upsample, reorg, implicit_add, implicit_mul, detect };
inline constexpr Op kAllOps[] = {Op::input,    Op::conv,     Op::batch_norm, Op::activation,   Op::add,          Op::concat,
                                 Op::max_pool, Op::upsample, Op::reorg,      Op::implicit_add, Op::implicit_mul, Op::detect};

using pdyolo::Activation;  // identity, silu, leaky_relu, relu (kernels/activation.hpp)

// The largest integer attribute (kernel, stride, padding, groups, scale, nc, …) a graph may hold:
// no real detector comes near it, and it keeps every product of attributes far from overflow.
inline constexpr int64_t kMaxAttribute = int64_t{1} << 20;

// Each struct's `fields(self, f)` calls, per field in file order, one of
//   f.integer(name, value, low)        an integer in [low, kMaxAttribute]
//   f.real(name, value)                a number
//   f.activation(name, value)          an activation's name
//   f.positive_reals(name, values)     a list of positive numbers
// (self is the struct, const or not: the same list reads, writes and checks.)
struct InputAttrs {
  int64_t channels = 3;  // of the image
  template <class Self, class F> static void fields(Self& a, F& f) { f.integer("channels", a.channels, 1); }
};
// The channel counts are the weight's: [out_channels, in_channels / groups, kernel, kernel].
struct ConvAttrs {
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
  template <class Self, class F> static void fields(Self& a, F& f) {
    f.integer("kernel", a.kernel, 1), f.integer("stride", a.stride, 1), f.integer("padding", a.padding, 0), f.integer("groups", a.groups, 1);
  }
};
struct BatchNormAttrs {
  float eps = 1e-3f, momentum = 0.03f;
  template <class Self, class F> static void fields(Self& a, F& f) { f.real("eps", a.eps), f.real("momentum", a.momentum); }
};
struct ActivationAttrs {
  Activation kind = Activation::silu;
  float slope = 0.1f;  // leaky_relu
  template <class Self, class F> static void fields(Self& a, F& f) { f.activation("kind", a.kind), f.real("slope", a.slope); }
};
struct PoolAttrs {
  int64_t kernel = 2, stride = 2, padding = 0;
  template <class Self, class F> static void fields(Self& a, F& f) {
    f.integer("kernel", a.kernel, 1), f.integer("stride", a.stride, 1), f.integer("padding", a.padding, 0);
  }
};
struct UpsampleAttrs {
  int64_t scale = 2;
  template <class Self, class F> static void fields(Self& a, F& f) { f.integer("scale", a.scale, 1); }
};
struct DetectAttrs {
  int64_t nc = 80, na = 3;
  std::vector<float> strides;  // per level, pixels per cell
  int64_t outputs_per_anchor() const { return nc + 5; }
  template <class Self, class F> static void fields(Self& a, F& f) {
    f.integer("nc", a.nc, 1), f.integer("na", a.na, 1), f.positive_reals("strides", a.strides);
  }
};
// An op without attributes (add, concat, reorg, implicit): nothing to read, write or check.
struct NoAttrs {
  template <class Self, class F> static void fields(Self&, F&) {}
};
using Attrs = std::variant<NoAttrs, InputAttrs, ConvAttrs, BatchNormAttrs, ActivationAttrs, PoolAttrs, UpsampleAttrs, DetectAttrs>;

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::silu: return "silu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::relu: return "relu";
  }
  return "?";
}
inline constexpr Activation kAllActivations[] = {Activation::identity, Activation::silu, Activation::leaky_relu, Activation::relu};

struct Node {
  Op op = Op::input;
  std::string name;                // prefix of its tensors: "model.3.conv" → "model.3.conv.weight"
  std::vector<int> inputs;         // producer node indices
  int layer = -1;                  // the config row it belongs to
  bool fixed_channels = false;     // its output channels have a fixed meaning (detection maps): never pruned
  Attrs attrs;
  nn::NamedTensors tensors;        // parameters (requires_grad) and buffers, in checkpoint order

  template <class T> T& get() { return std::get<T>(attrs); }
  template <class T> const T& get() const { return std::get<T>(attrs); }
  Tensor& tensor(const std::string& local) {
    for (auto& [n, t] : tensors)
      if (n == local) return t;
    throw_error("graph node '", name, "' has no tensor '", local, "'");
  }
  const Tensor& tensor(const std::string& local) const { return const_cast<Node*>(this)->tensor(local); }
  bool has_tensor(const std::string& local) const {
    for (auto& [n, t] : tensors)
      if (n == local) return true;
    return false;
  }
};

}  // namespace pdyolo::graph
