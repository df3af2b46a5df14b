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
#include "pdyolo/prune/prune.hpp"
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
       {"--workers", "K", "2", "data-loading threads"}, {"--no-progress", "", "", "no progress bars"},
       {"--teacher", "T", "", "kd-taylor: the teacher whose distillation loss is differentiated; iterative: also distil from it "
                              "while fine-tuning ('unpruned': the model before pruning)"},
       {"--kd", "MODE", "kl", "the distillation loss: kl, bce or mse (kd-taylor); also feature or cwd (fine-tuning)"},
       img_size_flag(), {"--threads", "T", "2", "threads of the latency measurement"},
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

// The same tensors under the same names with the same values.
inline bool same_weights(const graph::Graph& a, const graph::Graph& b) {
  const std::map<std::string, Tensor> x = a.state_dict(), y = b.state_dict();
  if (x.size() != y.size()) return false;
  for (const auto& [name, t] : x) {
    const auto it = y.find(name);
    if (it == y.end() || it->second.shape() != t.shape() || it->second.to_vector() != t.to_vector()) return false;
  }
  return true;
}

// Leaves ∂L/∂w, summed over --calib-batches batches of --data, in the model's tensors: L the task
// loss (taylor) or the distillation loss alone against --teacher (kd-taylor). The model runs in eval
// mode (train::Trainer::accumulate_gradients) and nothing is trained.
inline models::YoloModel with_prune_gradients(const Args& args, models::YoloModel model, prune::Importance importance, uint64_t seed,
                                              const models::YoloModel* teacher_model) {
  PDYOLO_CHECK(args.has("--data"), "--importance ", args.str("--importance"), " needs --data: the channels are scored by the loss's gradients");
  const bool kd = importance == prune::Importance::kd_taylor;
  PDYOLO_CHECK(!kd || teacher_model, "--importance kd-taylor needs --teacher");
  const data::Dataset set = data::load_dataset(args.str("--data"), args.str("--split"));
  set.report(std::cerr);
  train::TrainOptions o;
  o.batch_size = args.integer("--batch-size");
  o.img_size = args.integer("--img-size");
  o.workers = static_cast<int>(args.integer("--workers"));
  o.seed = seed;
  o.progress = !args.has("--no-progress");
  PDYOLO_CHECK(o.batch_size > 0 && args.integer("--calib-batches") > 0, "--batch-size and --calib-batches must be positive");
  const io::Value hyp = io::load_yaml(args.str("--hyp"));
  std::optional<distill::Distiller> distiller;
  if (kd) {
    distill::KdOptions ko;
    ko.mode = distill::parse_kd_mode(args.str("--kd"));
    PDYOLO_CHECK(ko.mode == distill::KdMode::kl || ko.mode == distill::KdMode::bce || ko.mode == distill::KdMode::mse,
                 "--importance kd-taylor differentiates an output loss (--kd kl, bce or mse): feature modes need trained adapters");
    ko.alpha = 0, ko.beta = 1;  // the distillation loss alone
    PDYOLO_CHECK(!same_weights(teacher_model->graph, model.graph), args.str("--teacher"),
                 ": the teacher is the model being pruned — a model distilled from itself has no gradient; use another (larger) teacher");
    distiller.emplace(models::YoloModel{teacher_model->graph.clone(), teacher_model->names, teacher_model->config}, model, ko, seed,
                      args.str("--teacher"));
  }
  train::Trainer trainer(std::move(model), set, nullptr, hyp, o);
  if (distiller) distiller->attach(trainer);
  trainer.accumulate_gradients(args.integer("--calib-batches"));
  model = std::move(trainer).release_model();
  double total = 0;
  for (const auto& [name, t] : model.graph.state_dict())
    if (const Tensor grad = t.grad(); grad.defined())
      for (float v : grad.to_vector()) total += std::fabs(v);
  PDYOLO_CHECK(total > 0, "--importance ", args.str("--importance"), ": every gradient is 0");
  return model;
}
}  // namespace detail

namespace detail {

// What a pruning aims at: a ratio of the channels, or at most a fraction of the FLOPs or parameters,
// or a latency in ms.
struct PruneGoal {
  enum Kind { ratio, flops, params, latency } kind = ratio;
  double value = 0.3;
};

inline PruneGoal prune_goal(const Args& args) {
  const int targets = args.has("--target-flops") + args.has("--target-params") + args.has("--target-latency");
  PDYOLO_CHECK(targets <= 1, "--target-flops, --target-params and --target-latency exclude each other");
  PruneGoal goal{PruneGoal::ratio, args.real("--ratio")};
  if (args.has("--target-flops")) goal = {PruneGoal::flops, args.real("--target-flops")};
  if (args.has("--target-params")) goal = {PruneGoal::params, args.real("--target-params")};
  if (args.has("--target-latency")) goal = {PruneGoal::latency, args.real("--target-latency")};
  PDYOLO_CHECK(goal.value > 0, "the pruning target must be positive, got ", goal.value);
  PDYOLO_CHECK(goal.kind == PruneGoal::latency || goal.value < 1, "--ratio, --target-flops and --target-params are fractions below 1, got ",
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

using Measure = std::function<double(const graph::Graph&)>;

// The cuts that take `g` to an absolute `target` of `measure`, or (no measure) remove `ratio` of its
// channels; o.ratio is set to the ratio used.
inline std::vector<prune::GroupCut> plan_towards(const graph::Graph& g, prune::PruneOptions& o, const Measure& measure, double target) {
  if (!measure) return prune::plan_pruning(g, o);
  const prune::TargetPlan plan = prune::plan_for_target(g, o, measure, target);
  o.ratio = plan.ratio;
  std::printf("target %.4g reached at ratio %.4f (measured %.4g)\n", target, plan.ratio, plan.measured);
  return plan.cuts;
}

// {"ratio":R,"groups":[{"node":…,"channels":C,"removed":[…]},…]} without the closing brace, for more fields.
inline std::string cuts_json(const std::vector<prune::GroupCut>& cuts, double ratio) {
  std::ostringstream json;
  json.precision(10);
  json << "{\"ratio\":" << ratio << ",\"groups\":[";
  for (size_t i = 0; i < cuts.size(); ++i) {
    json << (i ? "," : "") << "{\"node\":" << io::json_quote(cuts[i].node) << ",\"channels\":" << cuts[i].channels << ",\"removed\":[";
    for (size_t k = 0; k < cuts[i].removed.size(); ++k) json << (k ? "," : "") << cuts[i].removed[k];
    json << "]}";
  }
  json << "]";
  return json.str();
}

inline void print_cuts(const std::vector<prune::GroupCut>& cuts) {
  for (const prune::GroupCut& c : cuts)
    std::printf("  %-28s %5lld -> %5lld channels\n", c.node.c_str(), static_cast<long long>(c.channels),
                static_cast<long long>(c.channels - static_cast<int64_t>(c.removed.size())));
}

}  // namespace detail

inline int run_iterative_prune(const Args& args, prune::PruneOptions o, const detail::PruneGoal& goal, LoadedModel loaded, int64_t size,
                               const detail::Measure& latency);

inline int run_prune(const Args& args) {
  prune::PruneOptions o = detail::prune_options(args);
  const detail::PruneGoal goal = detail::prune_goal(args);
  const bool dry_run = args.has("--dry-run");
  const std::string out = dry_run ? "" : args.required("--out");
  PDYOLO_CHECK(dry_run || models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  const int64_t size = args.integer("--img-size");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const int latency_runs = static_cast<int>(args.integer("--latency-runs"));
  PDYOLO_CHECK(latency_runs >= 0, "--latency-runs must not be negative");
  PDYOLO_CHECK(latency_runs > 0 || goal.kind != detail::PruneGoal::latency, "--target-latency measures: --latency-runs must be positive");
  set_num_threads(static_cast<int>(args.integer("--threads")));
  const detail::Measure latency = [size, latency_runs](const graph::Graph& g) {
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
  detail::Measure measure;
  double target = 0;
  switch (goal.kind) {
    case detail::PruneGoal::ratio: o.ratio = goal.value; break;
    case detail::PruneGoal::flops:
      target = goal.value * before.gflops;
      measure = [size](const graph::Graph& g) { return g.conv_flops(size) / 1e9; };
      break;
    case detail::PruneGoal::params:
      target = goal.value * static_cast<double>(before.params);
      measure = [](const graph::Graph& g) { return static_cast<double>(g.parameter_count()); };
      break;
    case detail::PruneGoal::latency: target = goal.value, measure = latency; break;
  }
  const std::vector<prune::GroupCut> cuts = detail::plan_towards(model.graph, o, measure, target);
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
    json << detail::cuts_json(cuts, o.ratio) << ",\"importance\":\"" << args.str("--importance") << "\",\"global\":" << (o.global ? "true" : "false")
         << ",\"img_size\":" << size << ",\"threads\":" << num_threads() << ",\"before\":" << sizes(before)
         << ",\"file_bytes\":" << unpruned_bytes;
    if (!loaded.source.empty() && std::filesystem::is_regular_file(loaded.source))
      json << ",\"input_file_bytes\":" << std::filesystem::file_size(loaded.source);
    json << "},\"after\":" << sizes(after) << ",\"file_bytes\":" << pruned_bytes << "}}\n";
    io::write_file_atomic(args.str("--report"), [&](std::ostream& f) { f << json.str(); });
  }
  return 0;
}

namespace detail {

// One row of steps.csv: the model after a prune → fine-tune step (step 0: the unpruned model).
struct StepRow {
  int64_t step = 0;
  double ratio = 0;
  int64_t params = 0;
  double gflops = 0, latency_ms = 0, map50 = 0, map50_95 = 0;
};

inline const char* kStepsHeader = "step,ratio,params,gflops,latency_ms,map50,map50_95";

inline std::vector<StepRow> read_steps(const std::string& path) {
  std::vector<StepRow> rows;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return rows;
  PDYOLO_CHECK(line == kStepsHeader, path, ": not a steps file of `pdyolo prune --iterative-steps` (header '", line, "')");
  for (int64_t n = 2; std::getline(in, line); ++n) {
    StepRow r;
    long long step = 0, params = 0;
    PDYOLO_CHECK(std::sscanf(line.c_str(), "%lld,%lf,%lld,%lf,%lf,%lf,%lf", &step, &r.ratio, &params, &r.gflops, &r.latency_ms, &r.map50,
                             &r.map50_95) == 7 && step == static_cast<long long>(rows.size()),
                 path, ":", n, ": malformed row '", line, "'");
    r.step = step, r.params = params;
    rows.push_back(r);
  }
  return rows;
}

inline void write_steps(const std::string& dir, const std::vector<StepRow>& rows) {
  io::write_file_atomic(dir + "/steps.csv", [&](std::ostream& out) {
    out << kStepsHeader << "\n";
    char line[200];
    for (const StepRow& r : rows) {
      std::snprintf(line, sizeof line, "%lld,%.6f,%lld,%.6f,%.4f,%.6f,%.6f\n", static_cast<long long>(r.step), r.ratio,
                    static_cast<long long>(r.params), r.gflops, r.latency_ms, r.map50, r.map50_95);
      out << line;
    }
  });
  viz::PlotSeries map50{"mAP@.5", {}, {}, viz::class_color(1), 2}, map{"mAP@.5:.95", {}, {}, viz::class_color(4), 2};
  for (const StepRow& r : rows) {
    const double x = 100.0 * r.gflops / rows[0].gflops;
    map50.x.push_back(x), map50.y.push_back(r.map50), map.x.push_back(x), map.y.push_back(r.map50_95);
  }
  viz::PlotOptions o;
  o.title = "iterative pruning: validation mAP against FLOPs";
  o.x_label = "GFLOPs, % of the unpruned model";
  data::save_image(dir + "/steps.png", viz::plot_lines(o, {map50, map}));
}

}  // namespace detail

// Prune → fine-tune, K times: step k aims at the k-th of K equal shares of the way to the target
// (FLOPs, parameters, latency; a ratio R compounds, 1 − (1 − R)^(1/K) of the channels left each
// step), fine-tunes --finetune-epochs epochs on --split (distilling from --teacher when given),
// evaluates the EMA weights on --val-split, and stops once mAP@0.5 falls more than --max-map-drop
// points below the unpruned model's. --out gets the last model within that limit. Every step's
// pruned model, checkpoints and fine-tuned model stay in the work directory, and a rerun of the
// same command resumes: completed steps are read from steps.csv, a fine-tuning from its last
// checkpoint.
inline int run_iterative_prune(const Args& args, prune::PruneOptions o, const detail::PruneGoal& goal, LoadedModel loaded, int64_t size,
                               const detail::Measure& latency) {
  namespace fs = std::filesystem;
  const int64_t steps = args.integer("--iterative-steps"), epochs = args.integer("--finetune-epochs");
  const double max_drop = args.real("--max-map-drop") / 100.0;
  PDYOLO_CHECK(steps >= 1 && epochs >= 1, "--iterative-steps and --finetune-epochs must be at least 1");
  PDYOLO_CHECK(args.has("--data"), "--iterative-steps fine-tunes and evaluates: it needs --data");
  const std::string out = args.required("--out");
  const std::string work = args.has("--work-dir") ? args.str("--work-dir") : out.substr(0, out.size() - 12) + "_steps";
  fs::create_directories(work);
  const data::Dataset train_set = data::load_dataset(args.str("--data"), args.str("--split"));
  const data::Dataset val_set = data::load_dataset(args.str("--data"), args.str("--val-split"));
  train_set.report(std::cerr);
  const io::Value hyp = io::load_yaml(args.str("--hyp"));
  const models::YoloModel unpruned{loaded.model.graph.clone(), loaded.model.names, loaded.model.config};
  std::optional<models::YoloModel> teacher;
  if (args.has("--teacher")) teacher = args.str("--teacher") == "unpruned" ? models::YoloModel{unpruned.graph.clone(), unpruned.names, unpruned.config}
                                                                           : models::load_model(args.str("--teacher"));
  auto evaluate = [&](const models::YoloModel& m) {
    eval::EvalOptions eo;
    eo.img_size = size;
    eo.batch_size = args.integer("--batch-size");
    eo.progress = !args.has("--no-progress");
    graph::Graph g = m.graph.clone();
    graph::fuse(g);
    return eval::evaluate(g, val_set, eo).metrics;
  };
  auto row_of = [&](const models::YoloModel& m, int64_t step, double ratio) {
    const eval::Metrics metrics = evaluate(m);
    return detail::StepRow{step, ratio, m.graph.parameter_count(), m.graph.conv_flops(size) / 1e9, latency(m.graph), metrics.map50,
                           metrics.map50_95};
  };
  std::vector<detail::StepRow> rows = detail::read_steps(work + "/steps.csv");
  PDYOLO_CHECK(static_cast<int64_t>(rows.size()) <= steps + 1, work, "/steps.csv has ", rows.size() - 1, " steps; --iterative-steps is ", steps);
  if (rows.empty()) rows.push_back(row_of(unpruned, 0, 0.0));
  const auto step_dir = [&](int64_t k) { return work + "/step_" + std::to_string(k); };
  models::YoloModel model =
      rows.size() == 1 ? models::YoloModel{unpruned.graph.clone(), unpruned.names, unpruned.config} : models::load_model(step_dir(rows.size() - 1) + "/model.safetensors");
  // (the unpruned model is the reference, within by definition; a negative limit asks every step
  // to beat it by that many points)
  const auto within = [&](const detail::StepRow& r) { return r.step == 0 || rows[0].map50 - r.map50 <= max_drop; };
  std::printf("unpruned: %s parameters, %.2f GFLOPs, %.2f ms, val mAP@.5 %.4f%s\n", with_commas(rows[0].params).c_str(), rows[0].gflops,
              rows[0].latency_ms, rows[0].map50, rows.size() > 1 ? " (resuming)" : "");
  for (int64_t k = static_cast<int64_t>(rows.size()); k <= steps && within(rows.back()); ++k) {
    const std::string dir = step_dir(k);
    fs::create_directories(dir);
    if (fs::exists(dir + "/pruned.safetensors")) {  // pruned before an interruption: fine-tune it
      model = models::load_model(dir + "/pruned.safetensors");
      const std::vector<char> text = io::read_file(dir + "/plan.json");
      const io::Value plan = io::parse_json(std::string(text.begin(), text.end()), dir + "/plan.json");
      const io::Value* ratio = plan.find("ratio");
      PDYOLO_CHECK(ratio && ratio->is_number(), dir, "/plan.json: no number 'ratio'");
      o.ratio = ratio->as_double();
    } else {
      if (prune::needs_gradients(o.importance))
        model = detail::with_prune_gradients(args, std::move(model), o.importance, o.seed, teacher ? &*teacher : nullptr);
      const double share = static_cast<double>(k) / static_cast<double>(steps);
      detail::Measure measure;
      double target = 0;
      switch (goal.kind) {
        case detail::PruneGoal::ratio: o.ratio = 1.0 - std::pow(1.0 - goal.value, 1.0 / static_cast<double>(steps)); break;
        case detail::PruneGoal::flops:
          target = rows[0].gflops * (1.0 - (1.0 - goal.value) * share);
          measure = [size](const graph::Graph& g) { return g.conv_flops(size) / 1e9; };
          break;
        case detail::PruneGoal::params:
          target = static_cast<double>(rows[0].params) * (1.0 - (1.0 - goal.value) * share);
          measure = [](const graph::Graph& g) { return static_cast<double>(g.parameter_count()); };
          break;
        case detail::PruneGoal::latency: target = rows[0].latency_ms - (rows[0].latency_ms - goal.value) * share, measure = latency; break;
      }
      const std::vector<prune::GroupCut> cuts = detail::plan_towards(model.graph, o, measure, target);
      prune::apply_pruning(model.graph, cuts);
      for (auto& [name, t] : model.graph.state_dict()) t.zero_grad();
      model.config.reset();
      io::write_file_atomic(dir + "/plan.json", [&](std::ostream& f) { f << detail::cuts_json(cuts, o.ratio) << "}\n"; });
      models::save_model(dir + "/pruned.safetensors", model);  // (after plan.json: its presence means both are there)
    }
    std::printf("step %lld/%lld: %s parameters, %.2f GFLOPs; fine-tuning %lld epochs%s\n", static_cast<long long>(k),
                static_cast<long long>(steps), with_commas(model.graph.parameter_count()).c_str(), model.graph.conv_flops(size) / 1e9,
                static_cast<long long>(epochs), teacher ? " with distillation" : "");
    train::TrainOptions to;
    to.epochs = epochs;
    to.batch_size = args.integer("--batch-size");
    to.img_size = size;
    to.workers = static_cast<int>(args.integer("--workers"));
    to.seed = o.seed;
    to.out_dir = dir;
    to.progress = !args.has("--no-progress");
    std::optional<distill::Distiller> distiller;
    if (teacher) {
      distill::KdOptions ko;
      ko.mode = distill::parse_kd_mode(args.str("--kd"));
      distiller.emplace(models::YoloModel{teacher->graph.clone(), teacher->names, teacher->config}, model, ko, o.seed, args.str("--teacher"));
    }
    train::Trainer trainer(std::move(model), train_set, nullptr, hyp, to);
    if (distiller) distiller->attach(trainer);
    if (fs::exists(dir + "/last.safetensors")) trainer.resume(dir + "/last.safetensors");
    trainer.run(std::cout);
    model = trainer.ema_model_copy();
    models::save_model(dir + "/model.safetensors", model);
    rows.push_back(row_of(model, k, o.ratio));
    detail::write_steps(work, rows);
    const detail::StepRow& r = rows.back();
    std::printf("step %lld: %.1f%% of the parameters, %.1f%% of the GFLOPs, %.2fx faster (%.2f ms); val mAP@.5 %.4f (%+.2f points)\n",
                static_cast<long long>(k), 100.0 * r.params / rows[0].params, 100.0 * r.gflops / rows[0].gflops,
                rows[0].latency_ms / std::max(r.latency_ms, 1e-9), r.latency_ms, r.map50, 100.0 * (r.map50 - rows[0].map50));
  }
  int64_t kept = 0;  // the last step within the limit
  for (const detail::StepRow& r : rows)
    if (within(r)) kept = r.step;
  if (!within(rows.back()))
    std::printf("step %lld lost more than %g points of mAP@.5: stopped; keeping step %lld\n", static_cast<long long>(rows.back().step),
                100.0 * max_drop, static_cast<long long>(kept));
  const models::YoloModel result = kept == 0 ? models::YoloModel{unpruned.graph.clone(), unpruned.names, unpruned.config}
                                             : models::load_model(step_dir(kept) + "/model.safetensors");
  if (const auto folder = fs::path(out).parent_path(); !folder.empty()) fs::create_directories(folder);
  models::save_model(out, result);
  std::printf("wrote %s (step %lld: %s parameters, val mAP@.5 %.4f); steps in %s/steps.csv and steps.png\n", out.c_str(),
              static_cast<long long>(kept), with_commas(result.graph.parameter_count()).c_str(), rows[static_cast<size_t>(kept)].map50,
              work.c_str());
  return 0;
}

}  // namespace pdyolo::cli
