// `pdyolo quantize`: post-training quantization (quant/): calibrate the fused model's quantizers on
// --calib-images images of a split, write the int8 model file, and (--eval-split) evaluate the
// float model, the fake-quant simulation and the integer reference runtime side by side.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/quant/model_file.hpp"

namespace pdyolo::cli {

inline const CommandSpec& quantize_spec() {
  static const CommandSpec spec{
      "quantize",
      "int8 post-training quantization: calibrate, then compare float, simulated and integer mAP",
      {weights_flag(), cfg_flag(), nc_flag(), {"--data", "DATA", "", "dataset YAML or VOC folder"},
       {"--split", "NAME", "val", "the split whose images calibrate"},
       {"--calib-images", "N", "128", "calibration images (the split's first N)"},
       {"--observer", "KIND", "minmax", "minmax, ema, percentile, kl or mse"},
       {"--eval-split", "NAME", "", "evaluate float, fake-quant and integer models on this split"},
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
  eval::EvalOptions eo;
  eo.img_size = size;
  eo.batch_size = batch;
  eo.progress = !args.has("--no-progress");
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
