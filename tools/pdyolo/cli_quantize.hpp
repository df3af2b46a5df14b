// `pdyolo quantize`: post-training quantization (quant/): calibrate the fused model's quantizers on
// --calib-images images of a split, write the int8 model file, and (--eval-split) evaluate the
// float model, the fake-quant simulation and the integer runtime side by side.
// Mixed precision: --fp32-layers and --detect-fp32 keep convs in float; --sensitivity measures each
// conv's mAP drop when it alone is quantized (on --split), and --keep-fp32 K keeps the K worst.
// `pdyolo qat`: quantization-aware training (quant/qat.hpp) from such a calibration, then the same
// int8 model file and comparison.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "cli_train.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/quant/agreement.hpp"
#include "pdyolo/quant/model_file.hpp"
#include "pdyolo/quant/qat.hpp"
#include "pdyolo/quant/sensitivity.hpp"

namespace pdyolo::cli {

namespace detail {

// Calibrates plan's quantizers on the first `images` images of ds, letterboxed as evaluation sees them.
inline void calibrate_on(const graph::Graph& g, quant::QuantPlan& plan, quant::ObserverKind observer, const data::Dataset& ds, int64_t images,
                         int64_t size, int64_t batch, bool progress) {
  int64_t next = 0;
  ProgressBar bar("calibrate", images, progress);
  quant::calibrate(g, plan, observer, [&] {
    std::vector<data::Image> chunk;
    for (; next < images && static_cast<int64_t>(chunk.size()) < batch; ++next) {
      try {
        chunk.push_back(data::letterbox(data::load_image(ds.samples[static_cast<size_t>(next)].image_path), size, size).image);
      } catch (const Error& e) {
        std::cerr << "warning: " << e.what() << " (calibration image skipped)\n";
      }
    }
    bar.update(next);
    return chunk.empty() ? Tensor() : data::images_to_tensor(chunk);
  });
  bar.finish();
}

// Writes the int8 model file and says how large it is.
inline void write_int8(const std::string& out, const models::YoloModel& model, const quant::IntegerModel& integer, const std::string& how) {
  PDYOLO_CHECK(models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  quant::save_quantized(out, model, integer, how);
  std::printf("wrote %s (%.2f MB; the float weights: %.2f MB)\n", out.c_str(), static_cast<double>(std::filesystem::file_size(out)) / 1e6,
              static_cast<double>(model.graph.parameter_count()) * 4 / 1e6);
}

// Keeps --fp32-layers (and extra) convs and, with --detect-fp32, the head in float; says which.
inline void apply_mixed_precision(const Args& args, const graph::Graph& g, quant::QuantPlan& plan, std::vector<std::string> extra = {}) {
  std::vector<std::string> names = args.list("--fp32-layers");
  names.insert(names.end(), extra.begin(), extra.end());
  quant::keep_in_float(g, plan, names);
  if (args.has("--detect-fp32")) quant::keep_head_in_float(g, plan);
  std::string kept;
  for (size_t i = 0; i < plan.float_convs.size(); ++i)
    if (plan.float_convs[i]) kept += (kept.empty() ? "" : ", ") + g.nodes[i].name;
  if (!kept.empty()) std::printf("kept in float: %s\n", kept.c_str());
}

// The integer runtime against the simulation on the first `batch` images of ds (quant/agreement.hpp).
inline void report_agreement(const quant::IntegerModel& integer, const quant::Simulation& sim, const data::Dataset& ds, const std::string& split,
                             int64_t size, int64_t batch) {
  std::vector<data::Image> images;
  for (size_t k = 0; k < ds.samples.size() && static_cast<int64_t>(images.size()) < batch; ++k)
    images.push_back(data::letterbox(data::load_image(ds.samples[k].image_path), size, size).image);
  PDYOLO_CHECK(!images.empty(), "--agreement: split '", split, "' has no images");
  const Tensor x = data::images_to_tensor(images);
  const quant::Agreement local = quant::measure_agreement(integer, sim, x, true), end_to_end = quant::measure_agreement(integer, sim, x, false);
  std::printf("integer runtime against the fake-quant simulation on %zu images of '%s', %lld quantized values\n", images.size(), split.c_str(),
              static_cast<long long>(local.values));
  std::printf("  node by node: %s\n  end to end:   %s; raw maps differ by at most %.3g (relative to max(1, |value|))\n",
              quant::describe(local).c_str(), quant::describe(end_to_end).c_str(), end_to_end.raw_difference);
}

// The epoch a QAT run chose on val (its fake-quant fitness; the last without val) as a fused model,
// and the ranges it had then loaded into `quantizers`.
inline models::YoloModel chosen_qat_model(const std::string& dir, const models::YoloModel& fused, quant::QatQuantizers& quantizers) {
  const std::string chosen = std::filesystem::exists(dir + "/best.safetensors") ? dir + "/best.safetensors" : dir + "/last.safetensors";
  const io::SafetensorsContent ck = io::load_safetensors(chosen);
  std::map<std::string, Tensor> weights;
  for (const auto& [name, t] : ck.tensors)
    if (name.rfind("train.", 0) != 0) weights[name] = t;  // the EMA weights (train.*: the training state)
  models::YoloModel trained{fused.graph.clone(), fused.names, fused.config};
  trained.graph.load_state_dict(weights, true, chosen);
  trained.graph.eval();
  const auto state = ck.tensors.find("train.aux.qat.quantizers");
  PDYOLO_CHECK(state != ck.tensors.end(), chosen, ": no train.aux.qat.quantizers (not a QAT checkpoint)");
  quantizers.load_state(state->second, chosen);
  return trained;
}

// The float model, the fake-quant simulation and the integer runtime, side by side on one split.
inline void compare_on(const data::Dataset& ds, const std::string& split, const graph::Graph& float_graph, const graph::Graph& quantized,
                       const quant::QuantPlan& plan, const quant::IntegerModel& integer, const eval::EvalOptions& eo) {
  const quant::Simulation sim = quant::simulate(quantized, plan);
  std::printf("%-11s %9s %11s %8s   on %zu images of '%s' at %lld\n", "model", "mAP@.5", "mAP@.5:.95", "seconds", ds.samples.size(),
              split.c_str(), static_cast<long long>(eo.img_size));
  const auto row = [](const char* name, const eval::EvalRun& run) {
    std::printf("%-11s %9.4f %11.4f %8.1f\n", name, run.metrics.map50, run.metrics.map50_95, run.seconds);
  };
  row("float", eval::evaluate(float_graph, ds, eo));
  row("fake-quant", quant::evaluate_simulation(sim, ds, eo));
  row("integer", eval::evaluate_with([&](const Tensor& x) { return integer.run(x).decoded; }, ds, eo));
}

// sensitivity.csv and sensitivity.png (quant::write_sensitivity_report), then the table (worst
// first) on stdout.
inline void report_sensitivity(const std::string& dir, const graph::Graph& g, const std::vector<quant::LayerSensitivity>& layers,
                               const eval::Metrics& float_metrics) {
  quant::write_sensitivity_report(dir, g, layers, float_metrics);
  const std::string prefix = dir.empty() ? "" : dir + "/";
  std::printf("%-4s %-24s %9s %11s %8s   (float: %.4f %.4f; drops in points)\n", "rank", "conv", "drop@.5", "drop@.5:.95", "fitness",
              float_metrics.map50, float_metrics.map50_95);
  int rank = 0;
  for (const quant::LayerSensitivity& l : quant::by_sensitivity(layers))
    std::printf("%-4d %-24s %9.2f %11.2f %8.2f\n", ++rank, g.nodes[static_cast<size_t>(l.node)].name.c_str(),
                100.0 * (float_metrics.map50 - l.metrics.map50), 100.0 * (float_metrics.map50_95 - l.metrics.map50_95),
                100.0 * (eval::fitness(float_metrics) - l.fitness()));
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
       {"--eval-split", "NAMES", "", "evaluate float, fake-quant and integer models on these splits (comma-separated)"},
       {"--fp32-layers", "NAMES", "", "comma-separated convs (or layers: model.12) kept in float"},
       {"--detect-fp32", "", "", "keep the detect head's convs in float"},
       {"--sensitivity", "", "", "quantize one conv at a time and report its mAP drop on --split (table, CSV, plot)"},
       {"--keep-fp32", "K", "0", "keep the K most sensitive convs in float (measures --sensitivity)"},
       {"--report", "DIR", "", "where sensitivity.csv and sensitivity.png go (default: --out's folder)"},
       {"--agreement", "", "", "compare the integer runtime with the fake-quant simulation, node by node, on a batch of --split"},
       img_size_flag(), {"--batch-size", "B", "8", "images per batch"}, threads_flag(),
       no_progress_flag(),
       {"--out", "Q.safetensors", "", "the int8 model file (eval, detect, forward and bench run it)"}}};
  return spec;
}

inline int run_quantize(const Args& args) {
  const int64_t size = args.integer("--img-size"), batch = args.integer("--batch-size"), calib = args.integer("--calib-images");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  PDYOLO_CHECK(batch > 0 && calib > 0, "--batch-size and --calib-images must be positive");
  const quant::ObserverKind observer = quant::parse_observer(args.str("--observer"));
  args.apply_threads();
  LoadedModel loaded = model_from_args(args);
  models::YoloModel& model = loaded.model;
  graph::fuse(model.graph);
  model.graph.eval();
  const data::Dataset calib_set = data::load_dataset(args.required("--data"), args.str("--split"));
  const int64_t images = std::min<int64_t>(calib, static_cast<int64_t>(calib_set.samples.size()));
  PDYOLO_CHECK(images > 0, args.str("--data"), ": split '", args.str("--split"), "' has no images to calibrate on");

  quant::QuantPlan plan = quant::plan_quantization(model.graph);
  detail::calibrate_on(model.graph, plan, observer, calib_set, images, size, batch, !args.has("--no-progress"));
  std::printf("%s: %d quantizers calibrated on %lld images of '%s' (%s observer)\n", loaded.source.c_str(), plan.groups,
              static_cast<long long>(images), args.str("--split").c_str(), args.str("--observer").c_str());
  const int64_t keep = args.integer("--keep-fp32");
  PDYOLO_CHECK(keep >= 0, "--keep-fp32 must be 0 or more, got ", keep);
  eval::EvalOptions eo;
  eo.img_size = size;
  eo.batch_size = batch;
  eo.progress = !args.has("--no-progress");
  std::vector<std::string> most_sensitive;
  if (args.has("--sensitivity") || keep > 0) {
    const eval::Metrics float_metrics = eval::evaluate(model.graph, calib_set, eo).metrics;
    const std::vector<quant::LayerSensitivity> layers = quant::measure_sensitivity(model.graph, plan, calib_set, eo, eo.progress);
    std::string report = args.str("--report");
    if (report.empty() && args.has("--out")) report = std::filesystem::path(args.str("--out")).parent_path().string();
    detail::report_sensitivity(report, model.graph, layers, float_metrics);
    const std::vector<quant::LayerSensitivity> ranked = quant::by_sensitivity(layers);
    for (int64_t k = 0; k < std::min<int64_t>(keep, static_cast<int64_t>(ranked.size())); ++k)
      most_sensitive.push_back(model.graph.nodes[static_cast<size_t>(ranked[static_cast<size_t>(k)].node)].name);
  }
  detail::apply_mixed_precision(args, model.graph, plan, most_sensitive);

  const quant::IntegerModel integer(model.graph, plan);
  if (args.has("--agreement")) detail::report_agreement(integer, quant::simulate(model.graph, plan), calib_set, args.str("--split"), size, batch);
  if (args.has("--out")) detail::write_int8(args.str("--out"), model, integer, args.str("--observer"));
  for (const std::string& split : args.list("--eval-split"))
    detail::compare_on(data::load_dataset(args.str("--data"), split), split, model.graph, model.graph, plan, integer, eo);
  return 0;
}

inline const CommandSpec& qat_spec() {
  static const CommandSpec spec{
      "qat",
      "quantization-aware training: calibrate, fine-tune the fused model with fake-quant, write the int8 model",
      with_flags({weights_flag(), {"--data", "DATA", "", "dataset YAML or VOC folder (trains on train, selects the epoch on val)"},
                  {"--hyp", "FILE", "cfg/hyp/hyp.scratch.tiny.yaml", "hyperparameters (a fine-tuning learning rate is typical)"},
                  {"--split", "NAME", "", "one split for both training and validation (default: train and val)"},
                  {"--epochs", "N", "10", "epochs"}, {"--batch-size", "B", "16", "images per batch"}, img_size_flag(),
                  workers_flag(), {"--seed", "S", "0", "seed of everything random"},
                  cache_flag(), no_progress_flag(),
                  {"--calib-split", "NAME", "val", "the split whose images calibrate the starting ranges"},
                  {"--calib-images", "N", "128", "calibration images (the split's first N)"},
                  {"--observer", "KIND", "minmax", "calibration observer: minmax, ema, percentile, kl or mse"},
                  {"--observer-steps", "S", "0", "training steps during which moving-average observers adjust the ranges (then frozen)"},
                  {"--fp32-layers", "NAMES", "", "comma-separated convs (or layers: model.12) kept in float"},
                  {"--detect-fp32", "", "", "keep the detect head's convs in float"},
                  {"--work-dir", "DIR", "", "checkpoints, results.csv and plots (default: OUT without .safetensors, then _qat)"},
                  {"--resume", "", "", "continue the run in --work-dir"},
                  {"--eval-split", "NAMES", "", "at the end, evaluate float, fake-quant and integer models on these splits (comma-separated)"},
                  {"--out", "Q.safetensors", "", "the int8 model file"}},
                 distill_flags("distil from this model, or 'float' for the model before QAT"))};
  return spec;
}

inline int run_qat(const Args& args) {
  train::TrainOptions o = train_options_from_args(args);
  const std::string out = args.required("--out");
  PDYOLO_CHECK(models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  o.out_dir = args.has("--work-dir") ? args.str("--work-dir") : out.substr(0, out.size() - 12) + "_qat";
  quant::QatOptions qo;
  qo.observer_steps = args.integer("--observer-steps");
  PDYOLO_CHECK(qo.observer_steps >= 0, "--observer-steps must be 0 or more, got ", qo.observer_steps);
  const int64_t calib = args.integer("--calib-images");
  PDYOLO_CHECK(calib > 0, "--calib-images must be positive");

  const std::string data_path = args.required("--data");
  const data::Dataset train_set = data::load_dataset(data_path, args.has("--split") ? args.str("--split") : "train");
  const data::Dataset val_set = data::load_dataset(data_path, args.has("--split") ? args.str("--split") : "val");
  const data::Dataset calib_set = data::load_dataset(data_path, args.str("--calib-split"));
  LoadedModel loaded = model_from_args(args);
  const models::YoloModel float_model{loaded.model.graph.clone(), loaded.model.names, loaded.model.config};
  models::YoloModel model = std::move(loaded.model);
  graph::fuse(model.graph);  // the trained form is the quantized form: batch norm folded
  model.graph.eval();
  quant::QuantPlan plan = quant::plan_quantization(model.graph);
  const int64_t images = std::min<int64_t>(calib, static_cast<int64_t>(calib_set.samples.size()));
  PDYOLO_CHECK(images > 0, data_path, ": split '", args.str("--calib-split"), "' has no images to calibrate on");
  detail::calibrate_on(model.graph, plan, quant::parse_observer(args.str("--observer")), calib_set, images, o.img_size, 8, o.progress);
  detail::apply_mixed_precision(args, model.graph, plan);
  quant::QatQuantizers quantizers(model.graph, plan, qo);
  std::printf("QAT of %s: %d quantizers calibrated on %lld images of '%s' (%s), ranges frozen after %lld steps; %lld epochs on %zu images -> %s\n",
              loaded.source.c_str(), plan.groups, static_cast<long long>(images), args.str("--calib-split").c_str(),
              args.str("--observer").c_str(), static_cast<long long>(qo.observer_steps), static_cast<long long>(o.epochs),
              train_set.samples.size(), o.out_dir.c_str());

  std::optional<distill::Distiller> distiller;
  if (args.has("--teacher")) {
    const std::string teacher = args.str("--teacher");
    models::YoloModel teacher_model = teacher == "float" ? models::YoloModel{float_model.graph.clone(), float_model.names, float_model.config}
                                                         : models::load_model(teacher);
    distiller = distiller_from_args(args, std::move(teacher_model), teacher, model, o.seed);
  }
  const io::Value hyp = io::load_yaml(args.str("--hyp"));
  const models::YoloModel fused{model.graph.clone(), model.names, model.config};
  train::Trainer trainer(std::move(model), train_set, &val_set, hyp, o);
  trainer.add_taps(quantizers.training_taps([&trainer] { return trainer.iteration(); }));
  trainer.set_weight_taps(quantizers.weight_taps());
  trainer.add_state("qat.quantizers", quantizers.state());
  trainer.set_evaluator([&](const graph::Graph& ema, const data::Dataset& ds, const eval::EvalOptions& eo) {
    return quant::evaluate_simulation(quant::simulate(ema, quantizers.plan_for(ema)), ds, eo);
  });
  if (distiller) distiller->attach(trainer);  // after the quantizers: feature distillation sees the fake-quant values
  if (args.has("--resume")) trainer.resume(o.out_dir + "/last.safetensors");
  trainer.run(std::cout);

  const models::YoloModel trained = detail::chosen_qat_model(o.out_dir, fused, quantizers);
  const quant::QuantPlan trained_plan = quantizers.plan_for(trained.graph);
  const quant::IntegerModel integer(trained.graph, trained_plan);
  detail::write_int8(out, trained, integer, "qat");
  eval::EvalOptions eo;
  eo.img_size = o.img_size;
  eo.progress = o.progress;
  for (const std::string& split : args.list("--eval-split"))
    detail::compare_on(data::load_dataset(data_path, split), split, float_model.graph, trained.graph, trained_plan, integer, eo);
  return 0;
}

}  // namespace pdyolo::cli
