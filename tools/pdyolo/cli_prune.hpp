// `pdyolo prune`: structured channel pruning of any model file (prune/prune.hpp): by a ratio or to a
// target (parameters, FLOPs or measured latency), with gradients from a dataset for the Taylor
// criteria, and the latency before and after measured on the planned executor.
#pragma once
#include <cstdio>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/distill/distiller.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/viz/plot.hpp"
#include "pdyolo/graph/latency.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/prune/gradients.hpp"
#include "pdyolo/prune/iterative.hpp"
#include "pdyolo/train/trainer.hpp"

namespace pdyolo::cli {

inline const CommandSpec& prune_spec() {
  static const CommandSpec spec{
      "prune",
      "remove whole channels: every coupled tensor of a channel group is cut together",
      {weights_flag(), cfg_flag(), nc_flag(),
       {"--importance", "C", "l1", "channel importance: l1, l2, bn, taylor, kd-taylor or random"},
       {"--ratio", "R", "0.3", "fraction of the prunable channels to remove"},
       {"--target-flops", "F", "", "instead of --ratio: prune to at most this fraction of the model's FLOPs (e.g. 0.6)"},
       {"--target-params", "P", "", "instead of --ratio: prune to at most this fraction of its parameters"},
       {"--target-latency", "MS", "", "instead of --ratio: prune until the measured P50 latency is at most MS"},
       {"--global", "", "", "rank channels across groups (scores normalised per group) instead of within each"},
       {"--max-layer-ratio", "R", "0.8", "no group loses more than this fraction"},
       {"--round-to", "K", "", "groups keep a multiple of K channels (default: the conv kernel's row block, 8 with AVX-512 and NEON)"},
       {"--ignore", "NODES", "", "comma-separated node names whose groups stay whole"},
       {"--seed", "S", "0", "seed (random importance, the calibration batches; random weights with --cfg)"},
       {"--data", "DATA", "", "taylor, kd-taylor: dataset YAML or VOC folder whose loss gradients score the channels"},
       {"--split", "NAME", "train", "taylor, kd-taylor: the split to draw batches from; iterative: also the one to fine-tune on"},
       {"--val-split", "NAME", "val", "iterative: the split each step is evaluated on"},
       {"--calib-batches", "N", "16", "taylor, kd-taylor: batches the gradients are summed over"},
       {"--batch-size", "B", "8", "taylor, kd-taylor: images per batch"},
       {"--hyp", "FILE", "cfg/hyp/hyp.scratch.tiny.yaml", "taylor, kd-taylor: loss gains and augmentation"},
       workers_flag(), no_progress_flag(),
       {"--teacher", "T", "", "kd-taylor: the teacher whose distillation loss is differentiated; iterative: also distil from it "
                              "while fine-tuning ('unpruned': the model before pruning)"},
       {"--kd", "MODE", "kl", "the distillation loss: kl, bce or mse (kd-taylor); also feature or cwd (fine-tuning)"},
       img_size_flag(), threads_flag(),
       {"--latency-runs", "N", "20", "timed runs per latency measurement (0: none)"},
       {"--mask-only", "", "", "keep the shapes and zero the chosen channels instead (the same outputs as the pruned model)"},
       {"--dry-run", "", "", "print what would be removed, write nothing"},
       {"--report", "FILE.json", "", "per group: the channels removed; parameters, GFLOPs, latency and file size before and after"},
       {"--out", "OUT.safetensors", "", "the pruned model"},
       {"--iterative-steps", "K", "", "reach the target in K prune → fine-tune steps (needs --data; resumable)"},
       {"--finetune-epochs", "E", "10", "iterative: epochs of fine-tuning after each step"},
       {"--max-map-drop", "D", "5", "iterative: stop once val mAP@0.5 is more than D points below the unpruned model's (D < 0: not |D| above)"},
       {"--work-dir", "DIR", "", "iterative: each step's models, steps.csv and steps.png (default: OUT without .safetensors, then _steps)"}}};
  return spec;
}

namespace detail {
struct ModelSize {
  int64_t params = 0;
  double gflops = 0;
  double latency_ms = 0;  // P50 on the planned executor at --img-size; 0 when not measured
};

// Leaves ∂L/∂w, summed over --calib-batches batches of --data, in the model's tensors
// (prune::with_importance_gradients): L the task loss (taylor) or the distillation loss alone against
// --teacher (kd-taylor).
inline models::YoloModel with_prune_gradients(const Args& args, models::YoloModel model, prune::Importance importance, uint64_t seed,
                                              const models::YoloModel* teacher_model) {
  PDYOLO_CHECK(args.has("--data"), "--importance ", args.str("--importance"), " needs --data: the channels are scored by the loss's gradients");
  PDYOLO_CHECK(importance != prune::Importance::kd_taylor || teacher_model, "--importance kd-taylor needs --teacher");
  const data::Dataset set = data::load_dataset(args.str("--data"), args.str("--split"));
  set.report(std::cerr);
  prune::GradientOptions o;
  o.train.batch_size = args.integer("--batch-size");
  o.train.img_size = args.integer("--img-size");
  o.train.workers = static_cast<int>(args.integer("--workers"));
  o.train.seed = seed;
  o.train.progress = !args.has("--no-progress");
  o.batches = args.integer("--calib-batches");
  o.hyp = io::load_yaml(args.str("--hyp"));
  o.teacher = teacher_model;
  o.teacher_name = args.str("--teacher");
  if (importance == prune::Importance::kd_taylor) o.kd_mode = distill::parse_kd_mode(args.str("--kd"));
  return prune::with_importance_gradients(std::move(model), importance, set, o);
}
}  // namespace detail

namespace detail {

inline prune::PruneGoal prune_goal(const Args& args) {
  const int targets = args.has("--target-flops") + args.has("--target-params") + args.has("--target-latency");
  PDYOLO_CHECK(targets <= 1, "--target-flops, --target-params and --target-latency exclude each other");
  prune::PruneGoal goal{prune::PruneGoal::ratio, args.real("--ratio")};
  if (args.has("--target-flops")) goal = {prune::PruneGoal::flops, args.real("--target-flops")};
  if (args.has("--target-params")) goal = {prune::PruneGoal::params, args.real("--target-params")};
  if (args.has("--target-latency")) goal = {prune::PruneGoal::latency, args.real("--target-latency")};
  PDYOLO_CHECK(goal.value > 0, "the pruning target must be positive, got ", goal.value);
  PDYOLO_CHECK(goal.kind == prune::PruneGoal::latency || goal.value < 1, "--ratio, --target-flops and --target-params are fractions below 1, got ",
               goal.value);
  return goal;
}

inline prune::PruneOptions prune_options(const Args& args) {
  prune::PruneOptions o;
  o.importance = prune::parse_importance(args.str("--importance"));
  o.ratio = args.real("--ratio");
  o.global = args.has("--global");
  o.max_layer_ratio = args.real("--max-layer-ratio");
  o.round_to = args.has("--round-to") ? args.integer("--round-to") : prune::kernel_channel_multiple();
  PDYOLO_CHECK(o.round_to >= 1, "--round-to must be at least 1, got ", o.round_to);
  o.seed = static_cast<uint64_t>(args.integer("--seed"));
  o.ignore = args.list("--ignore");
  return o;
}

inline void print_cuts(const std::vector<prune::GroupCut>& cuts) {
  for (const prune::GroupCut& c : cuts)
    std::printf("  %-28s %5lld -> %5lld channels\n", c.node.c_str(), static_cast<long long>(c.channels),
                static_cast<long long>(c.channels - static_cast<int64_t>(c.removed.size())));
}

}  // namespace detail

inline int run_iterative_prune(const Args& args, const prune::PruneOptions& o, const prune::PruneGoal& goal, LoadedModel loaded, int64_t size,
                               const prune::Measure& latency);

inline int run_prune(const Args& args) {
  prune::PruneOptions o = detail::prune_options(args);
  const prune::PruneGoal goal = detail::prune_goal(args);
  const bool dry_run = args.has("--dry-run");
  const std::string out = dry_run ? "" : args.required("--out");
  PDYOLO_CHECK(dry_run || models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  const int64_t size = args.integer("--img-size");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const int latency_runs = static_cast<int>(args.integer("--latency-runs"));
  PDYOLO_CHECK(latency_runs >= 0, "--latency-runs must not be negative");
  PDYOLO_CHECK(latency_runs > 0 || goal.kind != prune::PruneGoal::latency, "--target-latency measures: --latency-runs must be positive");
  args.apply_threads();
  const prune::Measure latency = [size, latency_runs](const graph::Graph& g) {
    return latency_runs > 0 ? graph::planned_latency(g, size, 1, latency_runs).p50() : 0.0;
  };
  LoadedModel loaded = model_from_args(args, std::nullopt, o.seed);
  if (args.has("--iterative-steps")) {
    PDYOLO_CHECK(!dry_run && !args.has("--mask-only"), "--iterative-steps fine-tunes real pruned models: no --dry-run or --mask-only");
    return run_iterative_prune(args, o, goal, std::move(loaded), size, latency);
  }
  models::YoloModel& model = loaded.model;
  PDYOLO_CHECK(args.has("--teacher") == (o.importance == prune::Importance::kd_taylor),
               args.has("--teacher") ? "--teacher is for --importance kd-taylor (or fine-tuning with --iterative-steps)"
                                     : "--importance kd-taylor needs --teacher");
  if (prune::needs_gradients(o.importance)) {
    const std::optional<models::YoloModel> teacher =
        args.has("--teacher") ? std::optional<models::YoloModel>(models::load_model(args.str("--teacher"))) : std::nullopt;
    model = detail::with_prune_gradients(args, std::move(model), o.importance, o.seed, teacher ? &*teacher : nullptr);
  }
  const detail::ModelSize before{model.graph.parameter_count(), model.graph.conv_flops(size) / 1e9, latency(model.graph)};
  const uint64_t unpruned_bytes = models::model_file_bytes(model);  // (the input may be a checkpoint with EMA and optimizer)
  const prune::Measure measure = prune::goal_measure(goal, size, latency);
  double target = 0;
  switch (goal.kind) {
    case prune::PruneGoal::ratio: o.ratio = goal.value; break;
    case prune::PruneGoal::flops: target = goal.value * before.gflops; break;
    case prune::PruneGoal::params: target = goal.value * static_cast<double>(before.params); break;
    case prune::PruneGoal::latency: target = goal.value; break;
  }
  const std::vector<prune::GroupCut> cuts = prune::plan_towards(model.graph, o, measure, target, std::cout);
  if (args.has("--mask-only")) prune::apply_mask(model.graph, cuts);
  else prune::apply_pruning(model.graph, cuts);
  for (auto& [name, t] : model.graph.state_dict()) t.zero_grad();  // (Taylor's gradients: not part of the model)
  const detail::ModelSize after{model.graph.parameter_count(), model.graph.conv_flops(size) / 1e9, latency(model.graph)};
  detail::print_cuts(cuts);
  std::printf("%s: %zu groups cut (%s, ratio %.4g%s, multiples of %lld): %s -> %s parameters (%.1f%%), %.2f -> %.2f GFLOPs at %lld (%.1f%%)%s\n",
              loaded.source.c_str(), cuts.size(), args.str("--importance").c_str(), o.ratio, o.global ? ", global" : "",
              static_cast<long long>(o.round_to), with_commas(before.params).c_str(), with_commas(after.params).c_str(),
              100.0 * after.params / before.params, before.gflops, after.gflops, static_cast<long long>(size),
              100.0 * after.gflops / before.gflops, args.has("--mask-only") ? " (masked: shapes kept)" : "");
  if (latency_runs > 0)
    std::printf("latency P50 at %lld, %d threads, planned executor: %.2f -> %.2f ms: %.2fx faster for %.2fx fewer FLOPs\n",
                static_cast<long long>(size), num_threads(), before.latency_ms, after.latency_ms, before.latency_ms / after.latency_ms,
                before.gflops / after.gflops);
  if (dry_run) return 0;
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  if (!args.has("--mask-only")) model.config.reset();  // no config describes the pruned graph; its file does
  models::save_model(out, model);
  const uint64_t pruned_bytes = std::filesystem::file_size(out);
  std::printf("wrote %s (%.1f MB; the unpruned model's file: %.1f MB, %.1f%%)\n", out.c_str(), static_cast<double>(pruned_bytes) / 1e6,
              static_cast<double>(unpruned_bytes) / 1e6, 100.0 * static_cast<double>(pruned_bytes) / static_cast<double>(unpruned_bytes));
  if (args.has("--report")) {
    const auto sizes = [&](const detail::ModelSize& m) {
      std::ostringstream s;
      s << "{\"params\":" << m.params << ",\"gflops\":" << m.gflops << ",\"latency_p50_ms\":" << m.latency_ms;
      return s.str();
    };
    std::ostringstream json;
    json << prune::cuts_json(cuts, o.ratio) << ",\"importance\":\"" << args.str("--importance") << "\",\"global\":" << (o.global ? "true" : "false")
         << ",\"img_size\":" << size << ",\"threads\":" << num_threads() << ",\"before\":" << sizes(before)
         << ",\"file_bytes\":" << unpruned_bytes;
    if (!loaded.source.empty() && std::filesystem::is_regular_file(loaded.source))
      json << ",\"input_file_bytes\":" << std::filesystem::file_size(loaded.source);
    json << "},\"after\":" << sizes(after) << ",\"file_bytes\":" << pruned_bytes << "}}\n";
    io::write_file_atomic(args.str("--report"), [&](std::ostream& f) { f << json.str(); });
  }
  return 0;
}

// Prune → fine-tune, --iterative-steps times (prune::prune_iteratively: the steps, their models,
// steps.csv and steps.png in --work-dir, resumable); --out gets the last model within --max-map-drop.
inline int run_iterative_prune(const Args& args, const prune::PruneOptions& o, const prune::PruneGoal& goal, LoadedModel loaded, int64_t size,
                               const prune::Measure& latency) {
  PDYOLO_CHECK(args.has("--data"), "--iterative-steps fine-tunes and evaluates: it needs --data");
  const std::string out = args.required("--out");
  prune::IterativeOptions iterative;
  iterative.steps = args.integer("--iterative-steps");
  iterative.finetune_epochs = args.integer("--finetune-epochs");
  iterative.max_map_drop = args.real("--max-map-drop") / 100.0;
  iterative.work_dir = args.has("--work-dir") ? args.str("--work-dir") : out.substr(0, out.size() - 12) + "_steps";
  iterative.img_size = size;
  iterative.batch_size = args.integer("--batch-size");
  iterative.workers = static_cast<int>(args.integer("--workers"));
  iterative.progress = !args.has("--no-progress");
  iterative.hyp = io::load_yaml(args.str("--hyp"));
  iterative.latency = latency;
  const data::Dataset train_set = data::load_dataset(args.str("--data"), args.str("--split"));
  const data::Dataset val_set = data::load_dataset(args.str("--data"), args.str("--val-split"));
  train_set.report(std::cerr);
  std::optional<models::YoloModel> teacher;
  if (args.has("--teacher"))
    teacher = args.str("--teacher") == "unpruned" ? models::YoloModel{loaded.model.graph.clone(), loaded.model.names, loaded.model.config} : models::load_model(args.str("--teacher"));
  if (teacher) iterative.teacher = &*teacher, iterative.teacher_name = args.str("--teacher"), iterative.kd_mode = distill::parse_kd_mode(args.str("--kd"));
  iterative.with_gradients = [&](models::YoloModel m) {
    return detail::with_prune_gradients(args, std::move(m), o.importance, o.seed, teacher ? &*teacher : nullptr);
  };
  const prune::IterativeRun run = prune::prune_iteratively(loaded.model, o, goal, train_set, val_set, iterative, std::cout);
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  models::save_model(out, run.model);
  std::printf("wrote %s (step %lld: %s parameters, val mAP@.5 %.4f); steps in %s/steps.csv and steps.png\n", out.c_str(),
              static_cast<long long>(run.kept), with_commas(run.model.graph.parameter_count()).c_str(),
              run.rows[static_cast<size_t>(run.kept)].map50, iterative.work_dir.c_str());
  return 0;
}

}  // namespace pdyolo::cli
