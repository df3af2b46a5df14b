// `pdyolo quantize`: post-training quantization (quant/): calibrate the fused model's quantizers on
// --calib-images images of a split, write the int8 model file, and (--eval-split) evaluate the
// float model, the fake-quant simulation and the integer reference runtime side by side.
// Mixed precision: --fp32-layers and --detect-fp32 keep convs in float; --sensitivity measures each
// conv's mAP drop when it alone is quantized (on --split), and --keep-fp32 K keeps the K worst.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/io/plot.hpp"
#include "pdyolo/quant/model_file.hpp"

namespace pdyolo::cli {

namespace detail {

// One conv's sensitivity: the mAPs on the split with that conv alone quantized.
struct LayerSensitivity {
  int node = -1;
  double map50 = 0, map50_95 = 0;
};

// Quantizes each conv alone (fake-quant simulation: its weights, bias and outputs) and evaluates.
inline std::vector<LayerSensitivity> measure_sensitivity(const graph::Graph& g, const quant::QuantPlan& plan, const data::Dataset& ds,
                                                          eval::EvalOptions eo, bool progress) {
  std::vector<int> convs;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i)
    if (g.nodes[static_cast<size_t>(i)].op == graph::Op::conv) convs.push_back(i);
  eo.progress = false;
  ProgressBar bar("sensitivity", static_cast<int64_t>(convs.size()), progress);
  std::vector<LayerSensitivity> result;
  for (int conv : convs) {
    const quant::Simulation sim = quant::simulate(g, plan, conv);
    graph::RunOptions run;
    run.taps = &sim.taps;
    const eval::Metrics m = eval::evaluate_with([&](const Tensor& x) { return graph::forward(sim.graph, x, run).decoded; }, ds, eo).metrics;
    result.push_back({conv, m.map50, m.map50_95});
    bar.update(static_cast<int64_t>(result.size()));
  }
  bar.finish();
  return result;
}

// The convs by sensitivity, the worst first. Ranked by the drop of mAP@.5:.95 (it moves with every
// box's precision, so on a small split it separates layers that mAP@.5 rates the same), then mAP@.5.
inline std::vector<LayerSensitivity> by_sensitivity(std::vector<LayerSensitivity> layers) {
  std::stable_sort(layers.begin(), layers.end(), [](const LayerSensitivity& a, const LayerSensitivity& b) {
    return a.map50_95 != b.map50_95 ? a.map50_95 < b.map50_95 : a.map50 < b.map50;
  });
  return layers;
}

// sensitivity.csv (graph order) and sensitivity.png (the drops by conv, graph order), then the table
// (worst first) on stdout.
inline void report_sensitivity(const std::string& dir, const graph::Graph& g, const std::vector<LayerSensitivity>& layers,
                               const eval::Metrics& float_metrics) {
  if (!dir.empty()) std::filesystem::create_directories(dir);
  const std::string prefix = dir.empty() ? "" : dir + "/";
  io::write_file_atomic(prefix + "sensitivity.csv", [&](std::ostream& out) {
    out << "node,name,map50,map50_95,drop50,drop50_95\n";
    char line[300];
    for (const LayerSensitivity& l : layers) {
      std::snprintf(line, sizeof line, "%d,%s,%.6f,%.6f,%.6f,%.6f\n", l.node, g.nodes[static_cast<size_t>(l.node)].name.c_str(), l.map50,
                    l.map50_95, float_metrics.map50 - l.map50, float_metrics.map50_95 - l.map50_95);
      out << line;
    }
  });
  io::PlotSeries drop50{"mAP@.5 drop", {}, {}, data::class_color(1), 2}, drop{"mAP@.5:.95 drop", {}, {}, data::class_color(4), 2};
  for (size_t k = 0; k < layers.size(); ++k) {
    drop50.x.push_back(static_cast<double>(k)), drop50.y.push_back(100.0 * (float_metrics.map50 - layers[k].map50));
    drop.x.push_back(static_cast<double>(k)), drop.y.push_back(100.0 * (float_metrics.map50_95 - layers[k].map50_95));
  }
  io::PlotOptions o;
  o.title = "sensitivity: mAP drop with one conv quantized";
  o.x_label = "conv, in graph order";
  o.y_label = "points";
  data::save_image(prefix + "sensitivity.png", io::plot_lines(o, {drop50, drop}));
  std::printf("%-4s %-24s %9s %11s   (float: %.4f %.4f; drops in points)\n", "rank", "conv", "drop@.5", "drop@.5:.95", float_metrics.map50,
              float_metrics.map50_95);
  int rank = 0;
  for (const LayerSensitivity& l : by_sensitivity(layers))
    std::printf("%-4d %-24s %9.2f %11.2f\n", ++rank, g.nodes[static_cast<size_t>(l.node)].name.c_str(), 100.0 * (float_metrics.map50 - l.map50),
                100.0 * (float_metrics.map50_95 - l.map50_95));
  std::printf("wrote %ssensitivity.csv and %ssensitivity.png\n", prefix.c_str(), prefix.c_str());
}

}  // namespace detail

inline const CommandSpec& quantize_spec() {
  static const CommandSpec spec{
      "quantize",
      "int8 post-training quantization: calibrate, then compare float, simulated and integer mAP",
      {weights_flag(), cfg_flag(), nc_flag(), {"--data", "DATA", "", "dataset YAML or VOC folder"},
       {"--split", "NAME", "val", "the split whose images calibrate"},
       {"--calib-images", "N", "128", "calibration images (the split's first N)"},
       {"--observer", "KIND", "minmax", "minmax, ema, percentile, kl or mse"},
       {"--eval-split", "NAME", "", "evaluate float, fake-quant and integer models on this split"},
       {"--fp32-layers", "NAMES", "", "comma-separated convs (or layers: model.12) kept in float"},
       {"--detect-fp32", "", "", "keep the detect head's convs in float"},
       {"--sensitivity", "", "", "quantize one conv at a time and report its mAP drop on --split (table, CSV, plot)"},
       {"--keep-fp32", "K", "0", "keep the K most sensitive convs in float (measures --sensitivity)"},
       {"--report", "DIR", "", "where sensitivity.csv and sensitivity.png go (default: --out's folder)"},
       img_size_flag(), {"--batch-size", "B", "8", "images per batch"}, {"--threads", "T", "2", "threads"},
       {"--no-progress", "", "", "no progress bars"},
       {"--out", "Q.safetensors", "", "the int8 model file (eval, detect, forward and bench run it)"}}};
  return spec;
}

inline int run_quantize(const Args& args) {
  const int64_t size = args.integer("--img-size"), batch = args.integer("--batch-size"), calib = args.integer("--calib-images");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  PDYOLO_CHECK(batch > 0 && calib > 0, "--batch-size and --calib-images must be positive");
  const quant::ObserverKind observer = quant::parse_observer(args.str("--observer"));
  set_num_threads(static_cast<int>(args.integer("--threads")));
  LoadedModel loaded = model_from_args(args);
  models::YoloModel& model = loaded.model;
  graph::fuse(model.graph);
  model.graph.eval();
  const data::Dataset calib_set = data::load_dataset(args.required("--data"), args.str("--split"));
  const int64_t images = std::min<int64_t>(calib, static_cast<int64_t>(calib_set.samples.size()));
  PDYOLO_CHECK(images > 0, args.str("--data"), ": split '", args.str("--split"), "' has no images to calibrate on");

  quant::QuantPlan plan = quant::plan_quantization(model.graph);
  int64_t next = 0;
  ProgressBar bar("calibrate", images, !args.has("--no-progress"));
  quant::calibrate(model.graph, plan, observer, [&] {  // letterboxed images, as evaluation sees them
    std::vector<data::Image> chunk;
    for (; next < images && static_cast<int64_t>(chunk.size()) < batch; ++next) {
      try {
        chunk.push_back(data::letterbox(data::load_image(calib_set.samples[static_cast<size_t>(next)].image_path), size, size).image);
      } catch (const Error& e) {
        std::cerr << "warning: " << e.what() << " (calibration image skipped)\n";
      }
    }
    bar.update(next);
    return chunk.empty() ? Tensor() : data::images_to_tensor(chunk);
  });
  bar.finish();
  std::printf("%s: %d quantizers calibrated on %lld images of '%s' (%s observer)\n", loaded.source.c_str(), plan.groups,
              static_cast<long long>(images), args.str("--split").c_str(), args.str("--observer").c_str());

  const int64_t keep = args.integer("--keep-fp32");
  PDYOLO_CHECK(keep >= 0, "--keep-fp32 must be 0 or more, got ", keep);
  eval::EvalOptions eo;
  eo.img_size = size;
  eo.batch_size = batch;
  eo.progress = !args.has("--no-progress");
  std::vector<std::string> float_layers = args.list("--fp32-layers");
  if (args.has("--sensitivity") || keep > 0) {
    const eval::Metrics float_metrics = eval::evaluate(model.graph, calib_set, eo).metrics;
    const std::vector<detail::LayerSensitivity> layers = detail::measure_sensitivity(model.graph, plan, calib_set, eo, eo.progress);
    std::string report = args.str("--report");
    if (report.empty() && args.has("--out")) report = std::filesystem::path(args.str("--out")).parent_path().string();
    detail::report_sensitivity(report, model.graph, layers, float_metrics);
    const std::vector<detail::LayerSensitivity> ranked = detail::by_sensitivity(layers);
    for (int64_t k = 0; k < std::min<int64_t>(keep, static_cast<int64_t>(ranked.size())); ++k)
      float_layers.push_back(model.graph.nodes[static_cast<size_t>(ranked[static_cast<size_t>(k)].node)].name);
  }
  quant::keep_in_float(model.graph, plan, float_layers);
  if (args.has("--detect-fp32")) quant::keep_head_in_float(model.graph, plan);
  std::string kept;
  for (size_t i = 0; i < plan.float_convs.size(); ++i)
    if (plan.float_convs[i]) kept += (kept.empty() ? "" : ", ") + model.graph.nodes[i].name;
  if (!kept.empty()) std::printf("kept in float: %s\n", kept.c_str());

  const quant::IntegerModel integer(model.graph, plan);
  if (args.has("--out")) {
    const std::string out = args.str("--out");
    PDYOLO_CHECK(models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
    if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
    quant::save_quantized(out, model, integer, args.str("--observer"));
    std::printf("wrote %s (%.2f MB; the float weights: %.2f MB)\n", out.c_str(), static_cast<double>(std::filesystem::file_size(out)) / 1e6,
                static_cast<double>(model.graph.parameter_count()) * 4 / 1e6);
  }
  if (!args.has("--eval-split")) return 0;

  const data::Dataset eval_set = data::load_dataset(args.str("--data"), args.str("--eval-split"));
  const quant::Simulation sim = quant::simulate(model.graph, plan);
  graph::RunOptions sim_run;
  sim_run.taps = &sim.taps;
  const std::vector<std::pair<std::string, eval::DetectFn>> variants{
      {"float", nullptr},
      {"fake-quant", [&](const Tensor& x) { return graph::forward(sim.graph, x, sim_run).decoded; }},
      {"integer", [&](const Tensor& x) { return integer.run(x).decoded; }}};
  std::printf("%-11s %9s %11s %8s   on %zu images of '%s' at %lld\n", "model", "mAP@.5", "mAP@.5:.95", "seconds", eval_set.samples.size(),
              args.str("--eval-split").c_str(), static_cast<long long>(size));
  for (const auto& [name, detect] : variants) {
    const eval::EvalRun run = detect ? eval::evaluate_with(detect, eval_set, eo) : eval::evaluate(model.graph, eval_set, eo);
    std::printf("%-11s %9.4f %11.4f %8.1f\n", name.c_str(), run.metrics.map50, run.metrics.map50_95, run.seconds);
  }
  return 0;
}

}  // namespace pdyolo::cli
