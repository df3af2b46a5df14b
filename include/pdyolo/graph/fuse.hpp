// Inference-time fusion passes over the graph, each leaving the outputs unchanged (up to rounding):
//   fold_batch_norms  conv → bn            ⇒ conv with bias
//   fuse_repconv      Σ(k×k, 1×1, identity) ⇒ one k×k conv (RepConv re-parameterisation)
//   fold_implicit     ImplicitA → conv → ImplicitM ⇒ conv (IDetect becomes Detect)
//   chain_pools       SPP's k×k max-pools of one input ⇒ each the 5×5 pool of the one before
// fuse() runs all four and drops the bypassed nodes.
//
// And the one run-time peephole fusion both executors (graph/executor.hpp) plan their steps with:
//   plan_steps        producer → activation ⇒ one step, the activation applied as the producer's
//                     epilogue (batch norm in training, conv in planned inference)
#pragma once
#include <cmath>
#include <functional>
#include <map>

#include "pdyolo/graph/graph.hpp"

namespace pdyolo::graph {

namespace detail {

inline std::vector<int> user_counts(const Graph& g) {
  std::vector<int> users(g.nodes.size(), 0);
  for (const Node& n : g.nodes)
    for (int in : n.inputs) ++users[in];
  return users;
}

// Every read of node `from` now reads node `to` instead.
inline void redirect(Graph& g, int from, int to) {
  for (Node& n : g.nodes)
    for (int& in : n.inputs)
      if (in == from) in = to;
  for (int& out : g.layer_output)
    if (out == from) out = to;
}

// Drops nodes nothing reads any more (except the input and the detect head), renumbering inputs.
inline void remove_unused(Graph& g) {
  bool changed = true;
  std::vector<bool> keep(g.nodes.size(), true);
  while (changed) {
    changed = false;
    std::vector<int> users(g.nodes.size(), 0);
    for (size_t i = 0; i < g.nodes.size(); ++i)
      if (keep[i])
        for (int in : g.nodes[i].inputs) ++users[in];
    for (int out : g.layer_output) ++users[out];
    for (size_t i = 1; i < g.nodes.size(); ++i)
      if (keep[i] && users[i] == 0 && g.nodes[i].op != Op::detect) {
        keep[i] = false;
        changed = true;
      }
  }
  std::vector<int> index(g.nodes.size(), -1);
  std::vector<Node> kept;
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (keep[i]) {
      index[i] = static_cast<int>(kept.size());
      kept.push_back(std::move(g.nodes[i]));
    }
  for (Node& n : kept)
    for (int& in : n.inputs) in = index[in];
  for (int& out : g.layer_output) out = index[out];
  g.nodes = std::move(kept);
}

inline Tensor parameter(Tensor t) { return t.detach().set_requires_grad(); }

// Per-channel scale γ/√(σ²+ε) and shift β − μ·scale of a batch-norm node.
inline void bn_affine(const Node& bn, std::vector<float>& scale, std::vector<float>& shift) {
  const float eps = bn.get<BatchNormAttrs>().eps;
  const auto gamma = bn.tensor("weight").to_vector(), beta = bn.tensor("bias").to_vector();
  const auto mean = bn.tensor("running_mean").to_vector(), var = bn.tensor("running_var").to_vector();
  scale.resize(gamma.size());
  shift.resize(gamma.size());
  for (size_t c = 0; c < gamma.size(); ++c) {
    scale[c] = gamma[c] / std::sqrt(var[c] + eps);
    shift[c] = beta[c] - mean[c] * scale[c];
  }
}

inline Tensor conv_bias_or_zeros(const Node& conv) {
  return conv.has_tensor("bias") ? conv.tensor("bias").clone().detach()
                                 : Tensor::zeros({conv.tensor("weight").shape()[0]});
}

inline void set_conv_tensors(Node& conv, Tensor weight, Tensor bias) {
  conv.tensors = {{"weight", parameter(weight)}, {"bias", parameter(bias)}};
}

}  // namespace detail

// conv → bn ⇒ conv with W' = W·scale, b' = (b − μ)·scale + β. Returns how many were folded.
inline int fold_batch_norms(Graph& g) {
  int folded = 0;
  const std::vector<int> users = detail::user_counts(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& bn = g.nodes[i];
    if (bn.op != Op::batch_norm) continue;
    const int c = bn.inputs[0];
    Node& conv = g.nodes[c];
    if (conv.op != Op::conv || users[c] != 1) continue;
    std::vector<float> scale, shift;
    detail::bn_affine(bn, scale, shift);
    Tensor w = conv.tensor("weight").clone().detach(), b = detail::conv_bias_or_zeros(conv);
    const int64_t per_out = w.numel() / w.shape()[0];
    float* wp = w.data<float>();
    float* bp = b.data<float>();
    for (int64_t o = 0; o < w.shape()[0]; ++o) {
      for (int64_t j = 0; j < per_out; ++j) wp[o * per_out + j] *= scale[o];
      bp[o] = bp[o] * scale[o] + shift[o];
    }
    detail::set_conv_tensors(conv, w, b);
    detail::redirect(g, static_cast<int>(i), c);
    bn.inputs.clear();
    ++folded;
  }
  detail::remove_unused(g);
  return folded;
}

// add(conv k×k, conv 1×1, [bn on the input]) of one input ⇒ one k×k conv named <layer>.rbr_reparam.
// Run after fold_batch_norms (the branches are then plain convs with bias).
inline int fuse_repconv(Graph& g) {
  int fused = 0;
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& add = g.nodes[i];
    if (add.op != Op::add || add.inputs.size() < 2) continue;
    const std::vector<int> users = detail::user_counts(g);
    // The k×k branch is the conv with the largest kernel; all branches must read the same input.
    int main = -1, source = -1;
    bool ok = true;
    for (int b : add.inputs) {
      const Node& n = g.nodes[b];
      if (users[b] != 1) ok = false;
      if (n.op == Op::conv) {
        const int in = n.inputs[0];
        if (source >= 0 && in != source) ok = false;
        source = in;
        if (main < 0 || n.get<ConvAttrs>().kernel > g.nodes[main].get<ConvAttrs>().kernel) main = b;
      } else if (n.op != Op::batch_norm) {
        ok = false;
      }
    }
    for (int b : add.inputs)
      if (g.nodes[b].op == Op::batch_norm && g.nodes[b].inputs[0] != source) ok = false;
    if (!ok || main < 0) continue;
    const ConvAttrs ca = g.nodes[main].get<ConvAttrs>();
    const Shape main_shape = g.nodes[main].tensor("weight").shape();  // [OC, IC/groups, K, K]
    const int64_t K = ca.kernel, in_per_group = main_shape[1], out_channels = main_shape[0];
    bool compatible = true;
    for (int b : add.inputs) {
      const Node& n = g.nodes[b];
      if (n.op != Op::conv) continue;
      const ConvAttrs& c = n.get<ConvAttrs>();
      compatible = compatible && c.stride == ca.stride && c.groups == ca.groups && n.tensor("weight").shape()[0] == out_channels &&
                   c.kernel % 2 == 1 && ca.padding - c.padding == (K - c.kernel) / 2;
    }
    if (!compatible) continue;
    Tensor w = Tensor::zeros({out_channels, in_per_group, K, K}), bias = Tensor::zeros({out_channels});
    float* wp = w.data<float>();
    float* bp = bias.data<float>();
    for (int b : add.inputs) {
      const Node& n = g.nodes[b];
      if (n.op == Op::conv) {  // pad the smaller kernel into the centre of the k×k one
        const int64_t k = n.get<ConvAttrs>().kernel, off = (K - k) / 2;
        const auto bw = n.tensor("weight").to_vector();
        const auto bb = detail::conv_bias_or_zeros(n).to_vector();
        for (int64_t o = 0; o < out_channels; ++o) {
          bp[o] += bb[o];
          for (int64_t c = 0; c < in_per_group; ++c)
            for (int64_t y = 0; y < k; ++y)
              for (int64_t x = 0; x < k; ++x)
                wp[((o * in_per_group + c) * K + y + off) * K + x + off] += bw[((o * in_per_group + c) * k + y) * k + x];
        }
      } else {  // identity through bn: scale on the centre tap of channel o's own input
        std::vector<float> scale, shift;
        detail::bn_affine(n, scale, shift);
        for (int64_t o = 0; o < out_channels; ++o) {
          wp[((o * in_per_group + o % in_per_group) * K + K / 2) * K + K / 2] += scale[o];
          bp[o] += shift[o];
        }
      }
    }
    Node& merged = g.nodes[main];
    detail::set_conv_tensors(merged, w, bias);
    const std::string layer_name = add.name.size() > 4 && add.name.compare(add.name.size() - 4, 4, ".add") == 0
                                       ? add.name.substr(0, add.name.size() - 4)
                                       : add.name;
    merged.name = layer_name + ".rbr_reparam";
    detail::redirect(g, static_cast<int>(i), main);
    for (int b : add.inputs)
      if (b != main) g.nodes[b].inputs.clear();
    add.inputs.clear();
    ++fused;
  }
  detail::remove_unused(g);
  return fused;
}

// ImplicitA → conv (no padding) → ImplicitM ⇒ conv with b' = (b + W·a)·m and W' = W·m.
inline int fold_implicit(Graph& g) {
  int folded = 0;
  const std::vector<int> users = detail::user_counts(g);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    Node& mul = g.nodes[i];
    if (mul.op != Op::implicit_mul) continue;
    const int c = mul.inputs[0];
    Node& conv = g.nodes[c];
    if (conv.op != Op::conv || users[c] != 1) continue;
    const ConvAttrs& ca = conv.get<ConvAttrs>();
    Tensor w = conv.tensor("weight").clone().detach(), b = detail::conv_bias_or_zeros(conv);
    const int64_t out_channels = w.shape()[0], in_per_group = w.shape()[1], taps = w.shape()[2] * w.shape()[3];
    float* wp = w.data<float>();
    float* bp = b.data<float>();
    const int a = conv.inputs[0];
    if (g.nodes[a].op == Op::implicit_add && users[a] == 1 && ca.padding == 0) {
      const auto shift = g.nodes[a].tensor("implicit").to_vector();
      const int64_t out_per_group = out_channels / ca.groups;
      for (int64_t o = 0; o < out_channels; ++o)
        for (int64_t ci = 0; ci < in_per_group; ++ci)
          for (int64_t t = 0; t < taps; ++t)
            bp[o] += wp[(o * in_per_group + ci) * taps + t] * shift[(o / out_per_group) * in_per_group + ci];
      conv.inputs[0] = g.nodes[a].inputs[0];
      g.nodes[a].inputs.clear();
    }
    const auto scale = mul.tensor("implicit").to_vector();
    for (int64_t o = 0; o < out_channels; ++o) {
      for (int64_t j = 0; j < in_per_group * taps; ++j) wp[o * in_per_group * taps + j] *= scale[o];
      bp[o] *= scale[o];
    }
    detail::set_conv_tensors(conv, w, b);
    detail::redirect(g, static_cast<int>(i), c);
    mul.inputs.clear();
    ++folded;
  }
  detail::remove_unused(g);
  return folded;
}

namespace detail {

// The kernel of a max-pool that keeps the plane's size (stride 1, odd kernel, padding kernel / 2),
// else 0.
inline int64_t same_size_pool_kernel(const Node& n) {
  if (n.op != Op::max_pool) return 0;
  const PoolAttrs& p = n.get<PoolAttrs>();
  return p.stride == 1 && p.kernel % 2 == 1 && p.padding == p.kernel / 2 ? p.kernel : 0;
}

}  // namespace detail

// Same-size max-pools of one input (SPP: 5×5, 9×9, 13×13) ⇒ each pool but the smallest reads the
// largest smaller one, with kernel k − j + 1: a k×k window is the union of the j×j windows around
// the points of the (k − j + 1)×(k − j + 1) window around its centre, and with the padding as −∞
// (points outside the plane left out) the maxima are equal, exactly. SPP's windows then cost
// 5 + 5 + 5 instead of 5 + 9 + 13 comparisons per element and pass. Returns how many were chained.
inline int chain_pools(Graph& g) {
  int chained = 0;
  for (size_t i = g.nodes.size(); i-- > 0;) {  // last first: each pool looks among the original pools before it
    Node& pool = g.nodes[i];
    const int64_t k = detail::same_size_pool_kernel(pool);
    if (k == 0) continue;
    int source = -1;
    int64_t source_kernel = 0;
    for (size_t j = 0; j < i; ++j) {
      const int64_t kj = detail::same_size_pool_kernel(g.nodes[j]);
      if (kj > source_kernel && kj < k && g.nodes[j].inputs == pool.inputs) source = static_cast<int>(j), source_kernel = kj;
    }
    if (source < 0) continue;
    pool.inputs = {source};
    PoolAttrs& p = pool.get<PoolAttrs>();
    p.kernel = k - source_kernel + 1;
    p.padding = p.kernel / 2;
    ++chained;
  }
  return chained;
}

// ---- run-time fusion: the steps the executors run ----------------------------------------------

// A tap sees a node's output and returns the value the graph goes on with: the same tensor to
// observe it (distillation features, calibration statistics) or a replacement of the same shape
// (fake quantization). A tapped node always runs as its own step, so its output exists.
using TapFn = std::function<Tensor(const Tensor&)>;
using Taps = std::map<int, TapFn>;  // node index → its tap
// A weight tap replaces a conv's weight by a function of it in autograd mode, each run, gradient
// flowing through it (fake-quantized weights in quantization-aware training).
using WeightTaps = std::map<int, TapFn>;  // conv node index → its weight's tap

struct Step {
  int node = -1;        // the node this step runs
  int activation = -1;  // an activation node applied as the step's epilogue (−1: none)
  int output() const { return activation >= 0 ? activation : node; }  // the node whose value it produces
};

// One step per node (the input excepted), except that an activation whose input is read by nothing
// else and is a `producer` op is merged into that node's step. Taps on the producer prevent it.
inline std::vector<Step> plan_steps(const Graph& g, Op producer, const Taps* taps = nullptr) {
  const std::vector<int> users = detail::user_counts(g);
  std::vector<int> merged_into(g.nodes.size(), -1);  // producer → the step index it is merged into
  std::vector<Step> steps;
  for (int i = 1; i < static_cast<int>(g.nodes.size()); ++i) {
    const Node& n = g.nodes[i];
    if (n.op == Op::activation) {
      const int source = n.inputs[0];
      const bool tapped = taps && taps->count(source);
      if (g.nodes[source].op == producer && users[source] == 1 && !tapped && merged_into[source] >= 0) {
        steps[merged_into[source]].activation = i;
        continue;
      }
    }
    merged_into[i] = static_cast<int>(steps.size());
    steps.push_back({i, -1});
  }
  return steps;
}

struct FuseReport {
  int batch_norms = 0, repconvs = 0, implicits = 0, pools = 0;
};

inline FuseReport fuse(Graph& g) {
  FuseReport r;
  r.batch_norms = fold_batch_norms(g);
  r.repconvs = fuse_repconv(g);
  r.implicits = fold_implicit(g);
  r.pools = chain_pools(g);
  return r;
}

}  // namespace pdyolo::graph
