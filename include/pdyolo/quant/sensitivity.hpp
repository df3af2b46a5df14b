// The sensitivity analysis of mixed precision: each conv quantized alone (the fake-quant simulation
// of quant::simulate: its weights, bias and outputs) and evaluated, so that the convs whose
// quantization costs most can be kept in float (keep_in_float).
#pragma once
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "pdyolo/core/progress.hpp"
#include "pdyolo/data/image_io.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/quant/plan.hpp"
#include "pdyolo/viz/plot.hpp"

namespace pdyolo::quant {

// mAP of a fake-quant simulation (quant::simulate) on ds.
inline eval::EvalRun evaluate_simulation(const Simulation& sim, const data::Dataset& ds, const eval::EvalOptions& eo) {
  graph::RunOptions run;
  run.taps = &sim.taps;
  return eval::evaluate_with([&](const Tensor& x) { return graph::forward(sim.graph, x, run).decoded; }, ds, eo);
}

// One conv's sensitivity: the mAPs on the split with that conv alone quantized.
struct LayerSensitivity {
  int node = -1;
  eval::Metrics metrics;
  double fitness() const { return eval::fitness(metrics); }
};

// Quantizes each conv alone (fake-quant simulation: its weights, bias and outputs) and evaluates.
inline std::vector<LayerSensitivity> measure_sensitivity(const graph::Graph& g, const QuantPlan& plan, const data::Dataset& ds,
                                                          eval::EvalOptions eo, bool progress) {
  std::vector<int> convs;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i)
    if (g.nodes[static_cast<size_t>(i)].op == graph::Op::conv) convs.push_back(i);
  eo.progress = false;
  ProgressBar bar("sensitivity", static_cast<int64_t>(convs.size()), progress);
  std::vector<LayerSensitivity> result;
  for (int conv : convs) {
    result.push_back({conv, evaluate_simulation(simulate(g, plan, conv), ds, eo).metrics});
    bar.update(static_cast<int64_t>(result.size()));
  }
  bar.finish();
  return result;
}

// The convs by sensitivity, the worst first: ranked by the fitness they leave (eval::fitness, the
// trainer's choice of epoch: 0.1·mAP@.5 + 0.9·mAP@.5:.95), ties in graph order.
inline std::vector<LayerSensitivity> by_sensitivity(std::vector<LayerSensitivity> layers) {
  std::stable_sort(layers.begin(), layers.end(), [](const LayerSensitivity& a, const LayerSensitivity& b) { return a.fitness() < b.fitness(); });
  return layers;
}

// Writes sensitivity.csv (graph order: each conv's mAPs and drops) and sensitivity.png (the drops
// by conv, graph order) into dir (created if missing; "" is the current folder).
inline void write_sensitivity_report(const std::string& dir, const graph::Graph& g, const std::vector<LayerSensitivity>& layers,
                                     const eval::Metrics& float_metrics) {
  if (!dir.empty()) std::filesystem::create_directories(dir);
  const std::string prefix = dir.empty() ? "" : dir + "/";
  io::write_file_atomic(prefix + "sensitivity.csv", [&](std::ostream& out) {
    out << "node,name,map50,map50_95,drop50,drop50_95,fitness_drop\n";
    char line[300];
    for (const LayerSensitivity& l : layers) {
      std::snprintf(line, sizeof line, "%d,%s,%.6f,%.6f,%.6f,%.6f,%.6f\n", l.node, g.nodes[static_cast<size_t>(l.node)].name.c_str(),
                    l.metrics.map50, l.metrics.map50_95, float_metrics.map50 - l.metrics.map50, float_metrics.map50_95 - l.metrics.map50_95,
                    eval::fitness(float_metrics) - l.fitness());
      out << line;
    }
  });
  viz::PlotSeries drop50{"mAP@.5 drop", {}, {}, viz::class_color(1), 2}, drop{"mAP@.5:.95 drop", {}, {}, viz::class_color(4), 2};
  for (size_t k = 0; k < layers.size(); ++k) {
    drop50.x.push_back(static_cast<double>(k)), drop50.y.push_back(100.0 * (float_metrics.map50 - layers[k].metrics.map50));
    drop.x.push_back(static_cast<double>(k)), drop.y.push_back(100.0 * (float_metrics.map50_95 - layers[k].metrics.map50_95));
  }
  viz::PlotOptions o;
  o.title = "sensitivity: mAP drop with one conv quantized";
  o.x_label = "conv, in graph order";
  o.y_label = "points";
  data::save_image(prefix + "sensitivity.png", viz::plot_lines(o, {drop50, drop}));
}

}  // namespace pdyolo::quant
