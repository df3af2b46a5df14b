// `pdyolo prune`: structured channel pruning of any model file (prune/prune.hpp): by a ratio or to a
// target (parameters, FLOPs or measured latency), with gradients from a dataset for the Taylor
// criteria, and the latency before and after measured on the planned executor.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <optional>
#include <sstream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/distill/distiller.hpp"
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
       {"--round-to", "K", "8", "groups keep a multiple of K channels"},
       {"--ignore", "NODES", "", "comma-separated node names whose groups stay whole"},
       {"--seed", "S", "0", "seed (random importance, the calibration batches; random weights with --cfg)"},
       {"--data", "DATA", "", "taylor, kd-taylor: dataset YAML or VOC folder whose loss gradients score the channels"},
       {"--split", "NAME", "train", "taylor, kd-taylor: the split to draw batches from"},
       {"--calib-batches", "N", "16", "taylor, kd-taylor: batches the gradients are summed over"},
       {"--batch-size", "B", "8", "taylor, kd-taylor: images per batch"},
       {"--hyp", "FILE", "cfg/hyp/hyp.scratch.tiny.yaml", "taylor, kd-taylor: loss gains and augmentation"},
       {"--workers", "K", "2", "data-loading threads"},
       {"--teacher", "T", "", "kd-taylor: the teacher whose distillation loss is differentiated"},
       {"--kd", "MODE", "kl", "kd-taylor: distillation loss kl, bce or mse"},
       img_size_flag(), {"--threads", "T", "2", "threads of the latency measurement"},
       {"--latency-runs", "N", "20", "timed runs per latency measurement (0: none)"},
       {"--mask-only", "", "", "keep the shapes and zero the chosen channels instead (the same outputs as the pruned model)"},
       {"--dry-run", "", "", "print what would be removed, write nothing"},
       {"--report", "FILE.json", "", "per group: the channels removed; parameters, GFLOPs, latency and file size before and after"},
       {"--out", "OUT.safetensors", "", "the pruned model"}}};
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
inline models::YoloModel with_prune_gradients(const Args& args, models::YoloModel model, prune::Importance importance, uint64_t seed) {
  PDYOLO_CHECK(args.has("--data"), "--importance ", args.str("--importance"), " needs --data: the channels are scored by the loss's gradients");
  const bool kd = importance == prune::Importance::kd_taylor;
  PDYOLO_CHECK(kd == args.has("--teacher"), kd ? "--importance kd-taylor needs --teacher" : "--teacher is for --importance kd-taylor");
  const data::Dataset set = data::load_dataset(args.str("--data"), args.str("--split"));
  set.report(std::cerr);
  train::TrainOptions o;
  o.batch_size = args.integer("--batch-size");
  o.img_size = args.integer("--img-size");
  o.workers = static_cast<int>(args.integer("--workers"));
  o.seed = seed;
  PDYOLO_CHECK(o.batch_size > 0 && args.integer("--calib-batches") > 0, "--batch-size and --calib-batches must be positive");
  const io::Value hyp = io::load_yaml(args.str("--hyp"));
  std::optional<distill::Distiller> distiller;
  if (kd) {
    distill::KdOptions ko;
    ko.mode = distill::parse_kd_mode(args.str("--kd"));
    PDYOLO_CHECK(ko.mode == distill::KdMode::kl || ko.mode == distill::KdMode::bce || ko.mode == distill::KdMode::mse,
                 "--importance kd-taylor differentiates an output loss (--kd kl, bce or mse): feature modes need trained adapters");
    ko.alpha = 0, ko.beta = 1;  // the distillation loss alone
    models::YoloModel teacher = models::load_model(args.str("--teacher"));
    PDYOLO_CHECK(!same_weights(teacher.graph, model.graph), args.str("--teacher"),
                 ": the teacher is the model being pruned — a model distilled from itself has no gradient; use another (larger) teacher");
    distiller.emplace(std::move(teacher), model, ko, seed, args.str("--teacher"));
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

inline int run_prune(const Args& args) {
  prune::PruneOptions o;
  o.importance = prune::parse_importance(args.str("--importance"));
  o.ratio = args.real("--ratio");
  o.global = args.has("--global");
  o.max_layer_ratio = args.real("--max-layer-ratio");
  o.round_to = args.integer("--round-to");
  o.seed = static_cast<uint64_t>(args.integer("--seed"));
  std::istringstream ignore(args.str("--ignore"));
  for (std::string name; std::getline(ignore, name, ',');)
    if (!name.empty()) o.ignore.push_back(name);
  const int targets = args.has("--target-flops") + args.has("--target-params") + args.has("--target-latency");
  PDYOLO_CHECK(targets <= 1, "--target-flops, --target-params and --target-latency exclude each other");
  const bool dry_run = args.has("--dry-run");
  const std::string out = dry_run ? "" : args.required("--out");
  PDYOLO_CHECK(dry_run || models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  const int64_t size = args.integer("--img-size");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const int latency_runs = static_cast<int>(args.integer("--latency-runs"));
  PDYOLO_CHECK(latency_runs >= 0, "--latency-runs must not be negative");
  PDYOLO_CHECK(latency_runs > 0 || !args.has("--target-latency"), "--target-latency measures: --latency-runs must be positive");
  set_num_threads(static_cast<int>(args.integer("--threads")));
  LoadedModel loaded = model_from_args(args, std::nullopt, o.seed);
  models::YoloModel& model = loaded.model;
  if (prune::needs_gradients(o.importance)) model = detail::with_prune_gradients(args, std::move(model), o.importance, o.seed);

  auto latency = [&](const graph::Graph& g) { return latency_runs > 0 ? graph::planned_latency(g, size, 1, latency_runs).p50() : 0.0; };
  const detail::ModelSize before{model.graph.parameter_count(), model.graph.conv_flops(size) / 1e9, latency(model.graph)};
  std::vector<prune::GroupCut> cuts;
  if (targets == 0) {
    cuts = prune::plan_pruning(model.graph, o);
  } else {
    std::function<double(const graph::Graph&)> measure;
    double target = 0;
    if (args.has("--target-flops")) {
      target = args.real("--target-flops") * before.gflops;
      measure = [size](const graph::Graph& g) { return g.conv_flops(size) / 1e9; };
    } else if (args.has("--target-params")) {
      target = args.real("--target-params") * static_cast<double>(before.params);
      measure = [](const graph::Graph& g) { return static_cast<double>(g.parameter_count()); };
    } else {
      target = args.real("--target-latency");
      measure = latency;
    }
    PDYOLO_CHECK(target > 0, "the pruning target must be positive");
    const prune::TargetPlan plan = prune::plan_for_target(model.graph, o, measure, target);
    cuts = plan.cuts;
    o.ratio = plan.ratio;
    std::printf("target %.4g reached at ratio %.4f (measured %.4g)\n", target, plan.ratio, plan.measured);
  }
  if (args.has("--mask-only")) prune::apply_mask(model.graph, cuts);
  else prune::apply_pruning(model.graph, cuts);
  for (auto& [name, t] : model.graph.state_dict()) t.zero_grad();  // (Taylor's gradients: not part of the model)
  const detail::ModelSize after{model.graph.parameter_count(), model.graph.conv_flops(size) / 1e9, latency(model.graph)};
  for (const prune::GroupCut& c : cuts)
    std::printf("  %-28s %5lld -> %5lld channels\n", c.node.c_str(), static_cast<long long>(c.channels),
                static_cast<long long>(c.channels - static_cast<int64_t>(c.removed.size())));
  std::printf("%s: %zu groups cut (%s, ratio %.4g%s): %s -> %s parameters (%.1f%%), %.2f -> %.2f GFLOPs at %lld (%.1f%%)%s\n",
              loaded.source.c_str(), cuts.size(), args.str("--importance").c_str(), o.ratio, o.global ? ", global" : "",
              with_commas(before.params).c_str(), with_commas(after.params).c_str(), 100.0 * after.params / before.params, before.gflops,
              after.gflops, static_cast<long long>(size), 100.0 * after.gflops / before.gflops,
              args.has("--mask-only") ? " (masked: shapes kept)" : "");
  if (latency_runs > 0)
    std::printf("latency P50 at %lld, %d threads, planned executor: %.2f -> %.2f ms: %.2fx faster for %.2fx fewer FLOPs\n",
                static_cast<long long>(size), num_threads(), before.latency_ms, after.latency_ms, before.latency_ms / after.latency_ms,
                before.gflops / after.gflops);
  if (dry_run) return 0;
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  if (!args.has("--mask-only")) model.config.reset();  // no config describes the pruned graph; its file does
  models::save_model(out, model);
  std::printf("wrote %s (%.1f MB)\n", out.c_str(), static_cast<double>(std::filesystem::file_size(out)) / 1e6);
  if (args.has("--report")) {
    const auto sizes = [&](const detail::ModelSize& m) {
      std::ostringstream s;
      s << "{\"params\":" << m.params << ",\"gflops\":" << m.gflops << ",\"latency_p50_ms\":" << m.latency_ms;
      return s.str();
    };
    std::ostringstream json;
    json << "{\"importance\":\"" << args.str("--importance") << "\",\"ratio\":" << o.ratio << ",\"global\":" << (o.global ? "true" : "false")
         << ",\"img_size\":" << size << ",\"threads\":" << num_threads() << ",\"before\":" << sizes(before);
    if (!loaded.source.empty() && std::filesystem::is_regular_file(loaded.source))
      json << ",\"file_bytes\":" << std::filesystem::file_size(loaded.source);
    json << "},\"after\":" << sizes(after) << ",\"file_bytes\":" << std::filesystem::file_size(out) << "},\"groups\":[";
    for (size_t i = 0; i < cuts.size(); ++i) {
      json << (i ? "," : "") << "{\"node\":" << io::json_quote(cuts[i].node) << ",\"channels\":" << cuts[i].channels << ",\"removed\":[";
      for (size_t k = 0; k < cuts[i].removed.size(); ++k) json << (k ? "," : "") << cuts[i].removed[k];
      json << "]}";
    }
    json << "]}\n";
    io::write_file_atomic(args.str("--report"), [&](std::ostream& f) { f << json.str(); });
  }
  return 0;
}

}  // namespace pdyolo::cli
