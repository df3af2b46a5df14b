// Which values of a fused graph are quantized, with which quantizer, and how they are calibrated and
// simulated.
//
// Every node output is a uint8 tensor with one (s, z), except the detect head's: the convs feeding
// Detect keep their int32 accumulators and dequantize them (acc · s_x · s_w), so the raw maps come
// out in float. A conv followed by its activation has two: the conv's (the table's input) and the
// activation's. Quantizers are shared by construction, from the graph: a concat, a max-pool and an
// upsample have the very quantizer of their inputs (union-find over those edges), so they move
// levels without arithmetic. The inputs of a residual add share one quantizer too, so that the add
// sums levels and requantizes once; its sum has its own. The image is its own group with s = 1/255,
// z = 0.
//
// Mixed precision: a conv kept in float (keep_in_float) computes in float from its input's
// dequantized levels, with its float weights and bias, its activation in float, and quantizes its
// result to the same (s, z) as before (the activation's when it has one) — so every value around it
// stays quantized. A head conv kept in float returns float raw maps.
#pragma once
#include <functional>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "pdyolo/graph/executor.hpp"
#include "pdyolo/quant/fake_quant.hpp"
#include "pdyolo/quant/observer.hpp"

namespace pdyolo::quant {

struct QuantPlan {
  std::vector<int> group_of;  // node → its quantizer group; −1: not quantized (the detect node, the head convs)
  int groups = 0;
  int input_group = -1;          // the image's group (s = 1/255, z = 0)
  std::vector<QParams> params;   // per group, once calibrated
  std::vector<std::vector<float>> weight_scales;  // per node: a conv's per-output-channel weight scales
  std::vector<std::vector<int32_t>> biases;       // per node: a conv's int32 bias as loaded from a file (empty: from the float bias)
  std::vector<bool> float_convs;                  // per node: a conv kept in float (empty: none)

  bool quantized(int node) const { return group_of[static_cast<size_t>(node)] >= 0; }
  bool in_float(int node) const { return static_cast<size_t>(node) < float_convs.size() && float_convs[static_cast<size_t>(node)]; }
  QParams of(int node) const {
    PDYOLO_CHECK(quantized(node), "quant: node ", node, " is not quantized");
    return params[static_cast<size_t>(group_of[static_cast<size_t>(node)])];
  }
};

namespace detail {
inline int find_root(std::vector<int>& parent, int i) {
  while (parent[static_cast<size_t>(i)] != i) i = parent[static_cast<size_t>(i)] = parent[static_cast<size_t>(parent[static_cast<size_t>(i)])];
  return i;
}
}  // namespace detail

// The activation node that alone reads conv `conv`'s output (−1: none): the conv applies it, as a
// table in the integer runtime.
inline int fused_activation(const graph::Graph& g, int conv) {
  int reader = -1, readers = 0;
  for (int j = conv + 1; j < static_cast<int>(g.nodes.size()); ++j)
    for (int in : g.nodes[static_cast<size_t>(j)].inputs)
      if (in == conv) reader = j, ++readers;
  return readers == 1 && g.nodes[static_cast<size_t>(reader)].op == graph::Op::activation ? reader : -1;
}

// The convs that feed the detect node (its raw maps).
inline std::vector<int> head_convs(const graph::Graph& g) {
  const int detect = g.detect_node();
  PDYOLO_CHECK(detect >= 0, "quant: the graph has no detect node");
  return g.nodes[static_cast<size_t>(detect)].inputs;
}

// The groups of a fused graph (graph::fuse: no batch norm or implicit node left).
inline QuantPlan plan_quantization(const graph::Graph& g) {
  using graph::Op;
  const int n = static_cast<int>(g.nodes.size());
  const int detect = g.detect_node();
  std::vector<bool> head(static_cast<size_t>(n), false);
  for (int i : head_convs(g)) {
    PDYOLO_CHECK(g.nodes[static_cast<size_t>(i)].op == Op::conv, "quant: detect input '", g.nodes[static_cast<size_t>(i)].name,
                 "' is not a conv (fuse the model first)");
    head[static_cast<size_t>(i)] = true;
  }
  std::vector<int> parent(static_cast<size_t>(n));
  std::iota(parent.begin(), parent.end(), 0);
  QuantPlan plan;
  plan.weight_scales.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) {
    const graph::Node& node = g.nodes[static_cast<size_t>(i)];
    switch (graph::describe(node.op).quant) {  // each op's quantizer rule (graph/ops.hpp)
      case graph::QuantRule::fused_away:
        throw_error("quant: node '", node.name, "' (", graph::op_name(node.op), ") is not fused; run graph::fuse on the model first");
      case graph::QuantRule::moves_levels:  // the very quantizer of its inputs
        for (int in : node.inputs) parent[static_cast<size_t>(detail::find_root(parent, in))] = detail::find_root(parent, i);
        break;
      case graph::QuantRule::shared_inputs:  // its inputs share one scale; its output has its own
        for (int in : node.inputs) parent[static_cast<size_t>(detail::find_root(parent, in))] = detail::find_root(parent, node.inputs[0]);
        break;
      case graph::QuantRule::image:
      case graph::QuantRule::own:
      case graph::QuantRule::dequantized: break;
    }
    if (node.op == Op::conv) plan.weight_scales[static_cast<size_t>(i)] = weight_scales(node.tensor("weight"));
  }
  std::vector<int> id_of_root(static_cast<size_t>(n), -1);
  plan.group_of.assign(static_cast<size_t>(n), -1);
  for (int i = 0; i < n; ++i) {
    if (i == detect || head[static_cast<size_t>(i)]) continue;
    int& id = id_of_root[static_cast<size_t>(detail::find_root(parent, i))];
    if (id < 0) id = plan.groups++;
    plan.group_of[static_cast<size_t>(i)] = id;
  }
  plan.input_group = plan.group_of[0];
  plan.params.assign(static_cast<size_t>(plan.groups), QParams{});
  plan.params[static_cast<size_t>(plan.input_group)] = {1.0f / 255.0f, 0};
  return plan;
}

// Keeps convs in float (mixed precision). Each name is a conv node's name ("model.12.conv") or a
// layer's prefix ("model.12": every conv inside it); a name that matches no conv is an error.
inline void keep_in_float(const graph::Graph& g, QuantPlan& plan, const std::vector<std::string>& names) {
  plan.float_convs.resize(g.nodes.size(), false);
  for (const std::string& name : names) {
    bool matched = false;
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const std::string& node = g.nodes[i].name;
      if (g.nodes[i].op == graph::Op::conv && (node == name || node.rfind(name + ".", 0) == 0)) plan.float_convs[i] = matched = true;
    }
    PDYOLO_CHECK(matched, "quant: '", name, "' names no conv of the model (pdyolo info --weights W --verbose lists the layers)");
  }
}

// Keeps the detect head's convs in float: float raw maps from dequantized inputs.
inline void keep_head_in_float(const graph::Graph& g, QuantPlan& plan) {
  plan.float_convs.resize(g.nodes.size(), false);
  for (int i : head_convs(g)) plan.float_convs[static_cast<size_t>(i)] = true;
}

// Whether node i's output is quantized to its group's (s, z) — every quantized node but a float conv
// whose activation follows it (the activation's output is).
inline bool has_output_quantizer(const graph::Graph& g, const QuantPlan& plan, int i) {
  return plan.quantized(i) && !(plan.in_float(i) && fused_activation(g, i) >= 0);
}

// Whether the integer runtime holds node i's output as levels: every output quantizer's, except an
// integer conv's whose activation follows it — its levels only index the activation's table, whose
// output holds the levels.
inline bool has_output_levels(const graph::Graph& g, const QuantPlan& plan, int i) {
  return has_output_quantizer(g, plan, i) && !(g.nodes[static_cast<size_t>(i)].op == graph::Op::conv && fused_activation(g, i) >= 0);
}

// Runs `batches` calibration batches (next_batch() → images [N, C, H, W] in [0, 1], or an undefined
// Tensor when there are no more) through the float graph and sets every group's (s, z) from an
// observer of the kind asked for, which sees every member's values. The image's group stays 1/255.
inline void calibrate(const graph::Graph& g, QuantPlan& plan, ObserverKind kind, const std::function<Tensor()>& next_batch,
                      ObserverOptions options = {}) {
  std::vector<Observer> observers(static_cast<size_t>(plan.groups), Observer(kind, options));
  graph::Taps taps;
  for (int i = 1; i < static_cast<int>(g.nodes.size()); ++i)
    if (plan.quantized(i) && plan.group_of[static_cast<size_t>(i)] != plan.input_group)
      taps[i] = [&observers, group = plan.group_of[static_cast<size_t>(i)]](const Tensor& x) {
        observers[static_cast<size_t>(group)].observe(x);
        return x;
      };
  NoGradGuard no_grad;
  graph::RunOptions run;
  run.taps = &taps;
  run.decode = false;
  int64_t batches = 0;
  for (Tensor images = next_batch(); images.defined(); images = next_batch(), ++batches) graph::forward(g, images, run);
  PDYOLO_CHECK(batches > 0, "quant: calibration saw no images");
  for (int group = 0; group < plan.groups; ++group)
    if (group != plan.input_group && observers[static_cast<size_t>(group)].batches() > 0)
      plan.params[static_cast<size_t>(group)] = observers[static_cast<size_t>(group)].params();
}

// The float simulation of the integer model: a copy of the graph whose conv weights are fake-
// quantized per output channel and whose biases are rounded to int32 at s_x · s_w, and the taps
// that fake-quantize every quantized node's output (the image included). A conv kept in float keeps
// its weights and has no tap of its own when its activation follows (that one is quantized).
//
// only_layer ≥ 0 simulates one layer alone (the sensitivity analysis): conv `only_layer`'s weights,
// bias and outputs (its own and its activation's) are quantized, everything else stays float.
struct Simulation {
  graph::Graph graph;
  graph::Taps taps;
};

inline Simulation simulate(const graph::Graph& g, const QuantPlan& plan, int only_layer = -1) {
  Simulation sim{g.clone(), {}};
  sim.graph.eval();  // an inference model, whatever mode g was in
  const int layer_activation = only_layer >= 0 ? fused_activation(g, only_layer) : -1;
  for (int i = 0; i < static_cast<int>(sim.graph.nodes.size()); ++i) {
    graph::Node& node = sim.graph.nodes[static_cast<size_t>(i)];
    const bool in_layer = only_layer < 0 || i == only_layer || i == layer_activation;
    if (node.op == graph::Op::conv && !plan.in_float(i) && in_layer) {
      const std::vector<float>& scales = plan.weight_scales[static_cast<size_t>(i)];
      node.tensor("weight") = fake_quant_weight(node.tensor("weight").detach(), scales).detach();
      if (node.has_tensor("bias")) {
        const float input_scale = plan.of(node.inputs[0]).scale;
        std::vector<float> bias = node.tensor("bias").to_vector();
        for (size_t c = 0; c < bias.size(); ++c)
          bias[c] = static_cast<float>(quantize_bias(bias[c], input_scale, scales[c]) * (static_cast<double>(input_scale) * scales[c]));
        node.tensor("bias") = Tensor::from_vector(bias, {static_cast<int64_t>(bias.size())});
      }
    }
    if (in_layer && has_output_quantizer(g, plan, i))
      sim.taps[i] = [p = plan.of(i)](const Tensor& x) { return fake_quant_activation(x, p); };
  }
  return sim;
}

}  // namespace pdyolo::quant
