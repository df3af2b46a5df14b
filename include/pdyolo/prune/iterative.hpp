// Pruning towards a goal, in one cut or iteratively: prune → fine-tune, K times, with the steps'
// models, a table (steps.csv) and a plot (steps.png) in a work directory, resumable. What
// `pdyolo prune --iterative-steps` runs; callable from C++ with a model, datasets and options.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <vector>

#include "pdyolo/distill/distiller.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/io/json.hpp"
#include "pdyolo/prune/prune.hpp"
#include "pdyolo/train/trainer.hpp"
#include "pdyolo/viz/plot.hpp"

namespace pdyolo::prune {

// What a pruning aims at: a ratio of the channels, or at most a fraction of the FLOPs or parameters,
// or a latency in ms.
struct PruneGoal {
  enum Kind { ratio, flops, params, latency } kind = ratio;
  double value = 0.3;
};

// A size of a graph: GFLOPs, parameters, a latency.
using Measure = std::function<double(const graph::Graph&)>;

// The measure a goal is stated in (none for a ratio); `latency` measures latencies.
inline Measure goal_measure(const PruneGoal& goal, int64_t img_size, const Measure& latency) {
  switch (goal.kind) {
    case PruneGoal::ratio: return {};
    case PruneGoal::flops: return [img_size](const graph::Graph& g) { return g.conv_flops(img_size) / 1e9; };
    case PruneGoal::params: return [](const graph::Graph& g) { return static_cast<double>(g.parameter_count()); };
    case PruneGoal::latency: return latency;
  }
  return {};
}

// The cuts that take `g` to an absolute `target` of `measure`, or (no measure) remove o.ratio of its
// channels; o.ratio is set to the ratio used, and the search's result is said on `log`.
inline std::vector<GroupCut> plan_towards(const graph::Graph& g, PruneOptions& o, const Measure& measure, double target, std::ostream& log) {
  if (!measure) return plan_pruning(g, o);
  const TargetPlan plan = plan_for_target(g, o, measure, target);
  o.ratio = plan.ratio;
  char line[160];
  std::snprintf(line, sizeof line, "target %.4g reached at ratio %.4f (measured %.4g)\n", target, plan.ratio, plan.measured);
  log << line;
  return plan.cuts;
}

// {"ratio":R,"groups":[{"node":…,"channels":C,"removed":[…]},…]} without the closing brace, for more fields.
inline std::string cuts_json(const std::vector<GroupCut>& cuts, double ratio) {
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

// ---- iterative pruning ----------------------------------------------------------------------------

// One row of steps.csv: the model after a prune → fine-tune step (step 0: the unpruned model).
struct StepRow {
  int64_t step = 0;
  double ratio = 0;
  int64_t params = 0;
  double gflops = 0, latency_ms = 0, map50 = 0, map50_95 = 0;
};

inline const char* kStepsHeader = "step,ratio,params,gflops,latency_ms,map50,map50_95";

// The rows of a steps.csv (none when the file is absent).
inline std::vector<StepRow> read_steps(const std::string& path) {
  std::vector<StepRow> rows;
  std::ifstream in(path);
  std::string line;
  if (!std::getline(in, line)) return rows;
  PDYOLO_CHECK(line == kStepsHeader, path, ": not a steps file of iterative pruning (header '", line, "')");
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

// steps.csv and steps.png (validation mAP against the FLOPs left) into dir.
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

struct IterativeOptions {
  int64_t steps = 3;                // prune → fine-tune steps
  int64_t finetune_epochs = 10;
  double max_map_drop = 0.05;       // stop once val mAP@0.5 is more than this below the unpruned model's (negative: must beat it)
  std::string work_dir;             // each step's models, steps.csv and steps.png (required)
  int64_t img_size = 640, batch_size = 8;
  int workers = 2;
  bool progress = true;
  io::Value hyp;                    // the fine-tuning hyperparameters
  const models::YoloModel* teacher = nullptr;  // distil from it while fine-tuning (nullptr: plain fine-tuning)
  std::string teacher_name;         // for messages
  distill::KdMode kd_mode = distill::KdMode::kl;
  Measure latency;                  // measured into each row (empty: 0)
  // The Taylor criteria: leaves the loss's gradients in the model's tensors (as `pdyolo prune` does
  // with train::Trainer::accumulate_gradients). Needed when the importance needs_gradients.
  std::function<models::YoloModel(models::YoloModel)> with_gradients;
};

struct IterativeRun {
  std::vector<StepRow> rows;  // step 0 (the unpruned model) to the last step run
  int64_t kept = 0;           // the last step within max_map_drop
  models::YoloModel model;    // that step's model
};

namespace detail {
inline models::YoloModel copy_model(const models::YoloModel& m) { return {m.graph.clone(), m.names, m.config}; }
}  // namespace detail

// Prune → fine-tune, o.steps times: step k aims at the k-th of K equal shares of the way to the goal
// (FLOPs, parameters, latency; a ratio R compounds, 1 − (1 − R)^(1/K) of the channels left each
// step), fine-tunes o.finetune_epochs epochs on train_set (distilling from o.teacher when given),
// evaluates the EMA weights on val_set, and stops once mAP@0.5 falls more than o.max_map_drop below
// the unpruned model's. Every step's pruned model, checkpoints and fine-tuned model stay in
// o.work_dir, and a second call with the same arguments resumes: completed steps are read from
// steps.csv, a fine-tuning from its last checkpoint. Progress goes to `log`.
inline IterativeRun prune_iteratively(const models::YoloModel& unpruned, PruneOptions po, const PruneGoal& goal, const data::Dataset& train_set,
                                      const data::Dataset& val_set, const IterativeOptions& o, std::ostream& log) {
  namespace fs = std::filesystem;
  PDYOLO_CHECK(o.steps >= 1 && o.finetune_epochs >= 1, "iterative pruning: steps and fine-tuning epochs must be at least 1");
  PDYOLO_CHECK(!o.work_dir.empty(), "iterative pruning: no work directory");
  PDYOLO_CHECK(!needs_gradients(po.importance) || o.with_gradients,
               "iterative pruning: the Taylor criteria need the loss's gradients (IterativeOptions::with_gradients)");
  fs::create_directories(o.work_dir);
  const int64_t size = o.img_size;
  auto row_of = [&](const models::YoloModel& m, int64_t step, double ratio) {
    eval::EvalOptions eo;
    eo.img_size = size;
    eo.batch_size = o.batch_size;
    eo.progress = o.progress;
    graph::Graph fused = m.graph.clone();
    graph::fuse(fused);
    const eval::Metrics metrics = eval::evaluate(fused, val_set, eo).metrics;
    return StepRow{step, ratio, m.graph.parameter_count(), m.graph.conv_flops(size) / 1e9, o.latency ? o.latency(m.graph) : 0.0,
                   metrics.map50, metrics.map50_95};
  };
  IterativeRun run;
  std::vector<StepRow>& rows = run.rows;
  rows = read_steps(o.work_dir + "/steps.csv");
  PDYOLO_CHECK(static_cast<int64_t>(rows.size()) <= o.steps + 1, o.work_dir, "/steps.csv has ", rows.size() - 1, " steps; this run has ", o.steps);
  if (rows.empty()) rows.push_back(row_of(unpruned, 0, 0.0));
  const auto step_dir = [&](int64_t k) { return o.work_dir + "/step_" + std::to_string(k); };
  models::YoloModel model = rows.size() == 1 ? detail::copy_model(unpruned) : models::load_model(step_dir(static_cast<int64_t>(rows.size()) - 1) + "/model.safetensors");
  // (the unpruned model is the reference, within by definition)
  const auto within = [&](const StepRow& r) { return r.step == 0 || rows[0].map50 - r.map50 <= o.max_map_drop; };
  char line[300];
  std::snprintf(line, sizeof line, "unpruned: %lld parameters, %.2f GFLOPs, %.2f ms, val mAP@.5 %.4f%s\n", static_cast<long long>(rows[0].params),
                rows[0].gflops, rows[0].latency_ms, rows[0].map50, rows.size() > 1 ? " (resuming)" : "");
  log << line;
  for (int64_t k = static_cast<int64_t>(rows.size()); k <= o.steps && within(rows.back()); ++k) {
    const std::string dir = step_dir(k);
    fs::create_directories(dir);
    if (fs::exists(dir + "/pruned.safetensors")) {  // pruned before an interruption: fine-tune it
      model = models::load_model(dir + "/pruned.safetensors");
      const std::vector<char> text = io::read_file(dir + "/plan.json");
      const io::Value plan = io::parse_json(std::string(text.begin(), text.end()), dir + "/plan.json");
      const io::Value* ratio = plan.find("ratio");
      PDYOLO_CHECK(ratio && ratio->is_number(), dir, "/plan.json: no number 'ratio'");
      po.ratio = ratio->as_double();
    } else {
      if (needs_gradients(po.importance)) model = o.with_gradients(std::move(model));
      const double share = static_cast<double>(k) / static_cast<double>(o.steps);
      const Measure measure = goal_measure(goal, size, o.latency);
      double target = 0;
      switch (goal.kind) {
        case PruneGoal::ratio: po.ratio = 1.0 - std::pow(1.0 - goal.value, 1.0 / static_cast<double>(o.steps)); break;
        case PruneGoal::flops: target = rows[0].gflops * (1.0 - (1.0 - goal.value) * share); break;
        case PruneGoal::params: target = static_cast<double>(rows[0].params) * (1.0 - (1.0 - goal.value) * share); break;
        case PruneGoal::latency: target = rows[0].latency_ms - (rows[0].latency_ms - goal.value) * share; break;
      }
      const std::vector<GroupCut> cuts = plan_towards(model.graph, po, measure, target, log);
      apply_pruning(model.graph, cuts);
      for (auto& [name, t] : model.graph.state_dict()) t.zero_grad();
      model.config.reset();
      io::write_file_atomic(dir + "/plan.json", [&](std::ostream& f) { f << cuts_json(cuts, po.ratio) << "}\n"; });
      models::save_model(dir + "/pruned.safetensors", model);  // (after plan.json: its presence means both are there)
    }
    std::snprintf(line, sizeof line, "step %lld/%lld: %lld parameters, %.2f GFLOPs; fine-tuning %lld epochs%s\n", static_cast<long long>(k),
                  static_cast<long long>(o.steps), static_cast<long long>(model.graph.parameter_count()), model.graph.conv_flops(size) / 1e9,
                  static_cast<long long>(o.finetune_epochs), o.teacher ? " with distillation" : "");
    log << line;
    train::TrainOptions to;
    to.epochs = o.finetune_epochs;
    to.batch_size = o.batch_size;
    to.img_size = size;
    to.workers = o.workers;
    to.seed = po.seed;
    to.out_dir = dir;
    to.progress = o.progress;
    std::optional<distill::Distiller> distiller;
    if (o.teacher) {
      distill::KdOptions ko;
      ko.mode = o.kd_mode;
      distiller.emplace(detail::copy_model(*o.teacher), model, ko, po.seed, o.teacher_name);
    }
    train::Trainer trainer(std::move(model), train_set, nullptr, o.hyp, to);
    if (distiller) distiller->attach(trainer);
    if (fs::exists(dir + "/last.safetensors")) trainer.resume(dir + "/last.safetensors");
    trainer.run(log);
    model = trainer.ema_model_copy();
    models::save_model(dir + "/model.safetensors", model);
    rows.push_back(row_of(model, k, po.ratio));
    write_steps(o.work_dir, rows);
    const StepRow& r = rows.back();
    std::snprintf(line, sizeof line, "step %lld: %.1f%% of the parameters, %.1f%% of the GFLOPs, %.2fx faster (%.2f ms); val mAP@.5 %.4f (%+.2f points)\n",
                  static_cast<long long>(k), 100.0 * r.params / rows[0].params, 100.0 * r.gflops / rows[0].gflops,
                  rows[0].latency_ms / std::max(r.latency_ms, 1e-9), r.latency_ms, r.map50, 100.0 * (r.map50 - rows[0].map50));
    log << line;
  }
  for (const StepRow& r : rows)
    if (within(r)) run.kept = r.step;
  if (!within(rows.back())) {
    std::snprintf(line, sizeof line, "step %lld lost more than %g points of mAP@.5: stopped; keeping step %lld\n",
                  static_cast<long long>(rows.back().step), 100.0 * o.max_map_drop, static_cast<long long>(run.kept));
    log << line;
  }
  run.model = run.kept == 0 ? detail::copy_model(unpruned) : models::load_model(step_dir(run.kept) + "/model.safetensors");
  return run;
}

}  // namespace pdyolo::prune
