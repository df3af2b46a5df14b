// How closely the integer runtime follows the fake-quant simulation it is specified by: the share of
// every quantized node's values that are equal, and within one quantization step, between the two.
//
//   node by node  the simulation is fed the integer runtime's value at every quantized node, so each
//                 node is compared on the same inputs (what a kernel can be held to);
//   end to end    each runs on its own values, so rare one-step differences propagate (what a user
//                 sees in the raw maps).
#pragma once
#include <string>
#include <vector>

#include "pdyolo/quant/runtime.hpp"

namespace pdyolo::quant {

struct Agreement {
  int64_t values = 0, equal = 0, within_one = 0;  // quantized values compared
  double worst = 1.0;                             // the lowest share within one step of any node
  std::string worst_node;
  double raw_difference = 0;  // largest |integer − simulated| of the raw maps, relative to max(1, largest |simulated|)
  double share_equal() const { return values ? static_cast<double>(equal) / static_cast<double>(values) : 1.0; }
  double share_within_one() const { return values ? static_cast<double>(within_one) / static_cast<double>(values) : 1.0; }
};

// images [N, C, H, W], 8-bit (k/255); the simulation of the same graph and plan as `integer`.
inline Agreement measure_agreement(const IntegerModel& integer, const Simulation& sim, const Tensor& images, bool node_by_node) {
  const QuantPlan& plan = integer.plan();
  const graph::Graph& g = integer.graph();
  std::vector<Tensor> levels;
  const graph::DetectOutput int_out = integer.run(images, &levels, false);
  std::vector<Tensor> simulated(g.nodes.size());
  graph::Taps taps;
  for (const auto& [node, tap] : sim.taps)
    taps[node] = [&, node = node, tap = tap](const Tensor& x) {
      simulated[static_cast<size_t>(node)] = tap(x);
      const Tensor& q = levels[static_cast<size_t>(node)];
      if (!node_by_node || !q.defined()) return simulated[static_cast<size_t>(node)];
      const QParams p = plan.of(node);
      return (q - static_cast<float>(p.zero_point)) * p.scale;  // the integer runtime's value, dequantized
    };
  NoGradGuard no_grad;
  graph::RunOptions run;
  run.taps = &taps;
  run.decode = false;
  const graph::DetectOutput sim_out = graph::forward(sim.graph, images, run);
  Agreement a;
  for (size_t i = 0; i < levels.size(); ++i) {
    if (!levels[i].defined()) continue;
    PDYOLO_CHECK(simulated[i].defined(), "quant: node '", g.nodes[i].name, "' is quantized in the integer runtime, not in the simulation");
    const QParams p = plan.of(static_cast<int>(i));
    const std::vector<float> q = levels[i].to_vector(), f = simulated[i].to_vector();
    int64_t within = 0;
    for (size_t k = 0; k < q.size(); ++k) {
      const double steps = std::fabs(dequantize_activation(static_cast<int32_t>(q[k]), p) - f[k]) / p.scale;
      a.equal += steps < 0.01;
      within += steps < 1.01;
    }
    a.within_one += within;
    a.values += static_cast<int64_t>(q.size());
    const double share = static_cast<double>(within) / static_cast<double>(std::max<size_t>(q.size(), 1));
    if (share < a.worst) a.worst = share, a.worst_node = g.nodes[i].name;
  }
  for (size_t l = 0; l < int_out.raw.size(); ++l) {
    const std::vector<float> x = int_out.raw[l].to_vector(), y = sim_out.raw[l].to_vector();
    double diff = 0, scale = 1;
    for (size_t k = 0; k < x.size(); ++k) diff = std::max(diff, std::fabs(static_cast<double>(x[k]) - y[k])), scale = std::max(scale, std::fabs(static_cast<double>(y[k])));
    a.raw_difference = std::max(a.raw_difference, diff / scale);
  }
  return a;
}

// "99.9994 % equal, 99.9997 % within one step (worst 99.99 %, model.7.act)"
inline std::string describe(const Agreement& a) {
  char text[200];
  std::snprintf(text, sizeof text, "%.4f %% equal, %.4f %% within one step (worst %.3f %%, %s)", 100.0 * a.share_equal(), 100.0 * a.share_within_one(),
                100.0 * a.worst, a.worst_node.empty() ? "-" : a.worst_node.c_str());
  return text;
}

}  // namespace pdyolo::quant
