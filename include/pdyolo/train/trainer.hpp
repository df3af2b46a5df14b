// The training loop of the reference train.py: batches from the data loader, the OTA (or plain)
// loss, gradient accumulation to the nominal batch, warm-up and the learning-rate schedule, EMA,
// evaluation of the EMA weights after each epoch, results.csv, loss/mAP plots, and checkpoints
// (last and best) that hold everything needed to resume exactly.
#pragma once
#include <chrono>
#include <cmath>
#include <filesystem>
#include <functional>
#include <fstream>
#include <sstream>
#include <utility>

#include "pdyolo/core/progress.hpp"
#include "pdyolo/data/loader.hpp"
#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/viz/plot.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/train/loss.hpp"
#include "pdyolo/train/recipe.hpp"

namespace pdyolo::train {

struct TrainOptions {
  int64_t epochs = 300;
  int64_t batch_size = 16;
  int64_t img_size = 640;
  int workers = 2;
  uint64_t seed = 0;
  std::string out_dir = "runs/train";
  bool evaluate_each_epoch = true;  // false: only after the last epoch (--notest)
  bool linear_lr = false;
  bool progress = true;
  bool cache_images = false;
  int64_t max_steps = -1;           // stop after this many batches in total (tests); -1 = no limit
  float bn_momentum = -1.0f;        // > 0: override the batch-norm momentum (YOLOv7 uses 0.03)
  OptimizerKind optimizer = OptimizerKind::sgd;  // --adam / --adamw
  // Network slimming (--sparsity S): every backward pass adds S·sign(γ) to the gradient of each
  // batch-norm weight γ — the sub-gradient of S·Σ|γ| — so that unneeded channels' γ go to 0 and
  // `prune --importance bn` finds them. With sparsity_decay S falls linearly to 0.1·S over the run.
  double sparsity = 0;
  bool sparsity_decay = false;
};

struct EpochRecord {
  int64_t epoch = 0;
  LossItems loss;  // means over the epoch's batches
  eval::Metrics metrics;
  bool evaluated = false;
  double lr[3] = {0, 0, 0};
  double seconds = 0, images_per_second = 0;
  double kd = 0;               // the loss hook's own term (the distillation loss), mean over batches; 0 without one
  int64_t skipped_images = 0;  // training images found unreadable so far (each stood in for by another)
};

// What a training step's loss hook sees: the batch, the model's outputs on it (raw maps), and the
// task loss the reference recipe computes (OTA or plain YOLO loss on the labels).
struct LossContext {
  const data::Batch& batch;
  const graph::DetectOutput& out;
  const LossResult& task;
  int64_t epoch = 0;
};
// What a loss hook returns: the loss the step minimises (differentiable) and, for the logs, the
// hook's own term (distillation returns α·task + β·KD, and KD as the term). A bare Tensor converts.
struct HookLoss {
  HookLoss(Tensor loss_, double term_ = 0) : loss(std::move(loss_)), term(term_) {}
  Tensor loss;
  double term = 0;
};
// The default is the task loss; distillation computes the teacher's outputs in its hook.
using LossHook = std::function<HookLoss(const LossContext&)>;

struct StepResult {
  LossItems task;    // the task loss's parts (per image, as the reference logs them)
  float total = 0;   // the loss the step minimised
  bool stepped = false;  // the optimizer stepped (every `accumulate` batches)
  double hook_term = 0;     // HookLoss::term
  double hook_seconds = 0;  // time spent in the hook (a teacher's forward pass, the KD loss)
};

class Trainer {
 public:
  Trainer(models::YoloModel model, const data::Dataset& train_set, const data::Dataset* val_set, io::Value hyp, TrainOptions options)
      : model_(std::move(model)), train_(train_set), val_(val_set), hyp_(std::move(hyp)), o_(std::move(options)),
        recipe_(RecipeHyp::from_hyp(hyp_)), head_(detect_head(model_.graph)),
        loss_hyp_(LossHyp::from_hyp(hyp_, static_cast<int64_t>(head_.strides.size()), head_.nc, o_.img_size)),
        optimizer_(make_optimizer(model_.graph, recipe_, o_.batch_size, o_.optimizer)), ema_(model_.graph) {
    PDYOLO_CHECK(static_cast<int64_t>(train_.names.size()) == head_.nc, "train: the model has ", head_.nc, " classes but the dataset ",
                 train_.names.size());
    const io::Value* ota = hyp_.find("loss_ota");
    use_ota_ = !ota || !ota->is_number() || ota->as_double() != 0.0;
    if (o_.bn_momentum > 0)
      for (graph::Node& n : model_.graph.nodes)
        if (n.op == graph::Op::batch_norm) n.get<graph::BatchNormAttrs>().momentum = o_.bn_momentum;
  }

  // Restores a checkpoint written by save_checkpoint (the --resume path).
  void resume(const std::string& path) {
    io::SafetensorsContent ck = io::load_safetensors(path);
    auto meta = [&](const char* key) {
      auto it = ck.metadata.find(key);
      PDYOLO_CHECK(it != ck.metadata.end(), path, ": not a training checkpoint (no '", key, "' in the metadata)");
      return it->second;
    };
    start_epoch_ = std::stoll(meta("pdyolo.epoch")) + 1;
    check_optimizer_kind(ck, path);
    iteration_ = std::stoll(meta("pdyolo.iteration"));
    best_fitness_ = std::stod(meta("pdyolo.best_fitness"));
    const int64_t updates = std::stoll(meta("pdyolo.ema_updates"));
    std::map<std::string, Tensor> model, ema, aux;
    for (auto& [name, t] : ck.tensors) {
      if (name.rfind("train.model.", 0) == 0) model[name.substr(12)] = t;
      else if (name.rfind("train.aux.", 0) == 0) aux[name.substr(10)] = t;
      else if (name.rfind("train.", 0) != 0) ema[name] = t;
    }
    model_.graph.load_state_dict(model, true, path);
    ema_ = ModelEMA(model_.graph, 0.9999, updates);
    nn::load_named_tensors(ema_.state_dict(), ema, true, path);
    const std::map<std::string, Tensor> own_aux(aux_.begin(), aux_.end());
    nn::load_named_tensors(own_aux, aux, true, path + " (trained tensors outside the model, e.g. distillation adapters: resume with the same --kd)");
    restore_optimizer_state(ck, path);
    resumed_ = true;
    if (auto it = ck.metadata.find("pdyolo.history"); it != ck.metadata.end()) history_csv_ = it->second;
  }

  // Runs the remaining epochs; returns the per-epoch records.
  std::vector<EpochRecord> run(std::ostream& log) {
    namespace fs = std::filesystem;
    fs::create_directories(o_.out_dir);
    data::DataLoader loader(train_, loader_options());
    const HostBlockCacheScope block_cache;  // each step reuses the last one's freed activation blocks
    const int64_t nb = loader.size(), warmup = warmup_iterations(recipe_, nb);
    std::vector<EpochRecord> records;
    for (int64_t epoch = start_epoch_; epoch < o_.epochs; ++epoch) {
      EpochRecord rec;
      rec.epoch = epoch;
      const double lf = o_.linear_lr ? linear_lr(static_cast<double>(epoch), recipe_.lrf, o_.epochs)
                                     : one_cycle(static_cast<double>(epoch), recipe_.lrf, o_.epochs);
      model_.graph.train();
      loader.start_epoch(epoch);
      ProgressBar bar("epoch " + std::to_string(epoch + 1) + "/" + std::to_string(o_.epochs), nb, o_.progress);
      data::Batch batch;
      int64_t batches = 0, images = 0;
      double hook_seconds = 0;
      while (loader.next(batch)) {
        const int64_t accumulate = schedule(optimizer_, recipe_, iteration_, warmup, lf, o_.batch_size);
        const StepResult loss = step(batch, accumulate, epoch);
        ++batches;
        images += batch.images.shape()[0];
        rec.loss.box += loss.task.box, rec.loss.obj += loss.task.obj, rec.loss.cls += loss.task.cls, rec.loss.total += loss.task.total;
        rec.kd += loss.hook_term;
        hook_seconds += loss.hook_seconds;
        char extra[160];
        int used = std::snprintf(extra, sizeof extra, "box %.4f obj %.4f cls %.4f  %.1f img/s", rec.loss.box / batches, rec.loss.obj / batches,
                                 rec.loss.cls / batches, images / std::max(bar.elapsed(), 1e-9));
        if (loss_hook_)  // the distillation term, and the share of the time its teacher takes
          std::snprintf(extra + used, sizeof extra - used, "  kd %.4f (teacher+kd %.0f%% of the time)", rec.kd / batches,
                        100.0 * hook_seconds / std::max(bar.elapsed(), 1e-9));
        bar.update(batches, extra);
        if (o_.max_steps > 0 && iteration_ >= o_.max_steps) break;
      }
      bar.finish();
      for (const std::string& p : loader.take_problems()) log << "warning: " << p << ", skipped (the next readable image stands in)\n";
      rec.skipped_images = loader.skipped_images();
      rec.loss.box /= std::max<int64_t>(batches, 1), rec.loss.obj /= std::max<int64_t>(batches, 1);
      rec.loss.cls /= std::max<int64_t>(batches, 1), rec.loss.total /= std::max<int64_t>(batches, 1);
      rec.kd /= std::max<int64_t>(batches, 1);
      for (size_t g = 0; g < 3 && g < optimizer_.groups.size(); ++g) rec.lr[g] = optimizer_.groups[g].options.lr;
      rec.seconds = bar.elapsed();
      rec.images_per_second = images / std::max(rec.seconds, 1e-9);
      const bool last = epoch + 1 == o_.epochs || (o_.max_steps > 0 && iteration_ >= o_.max_steps);
      if (val_ && (o_.evaluate_each_epoch || last)) {
        models::YoloModel ema_model = ema_model_copy();
        eval::EvalOptions eo;
        eo.img_size = o_.img_size;
        eo.progress = o_.progress;
        const eval::EvalRun run = evaluator_ ? evaluator_(ema_model.graph, *val_, eo) : eval::evaluate(ema_model.graph, *val_, eo);
        rec.metrics = run.metrics;
        if (!std::exchange(val_problems_reported_, true))  // the same files each epoch: said once
          for (const std::string& p : run.problems) log << "warning: " << p << " (validation image skipped)\n";
        rec.evaluated = true;
        log << "  P " << rec.metrics.precision << "  R " << rec.metrics.recall << "  mAP@.5 " << rec.metrics.map50 << "  mAP@.5:.95 "
            << rec.metrics.map50_95 << "\n";
      }
      const double fitness = rec.evaluated ? eval::fitness(rec.metrics) : -1.0;
      append_history(rec);
      save_checkpoint(o_.out_dir + "/last.safetensors", epoch);
      if (rec.evaluated && fitness > best_fitness_) {
        best_fitness_ = fitness;
        save_checkpoint(o_.out_dir + "/best.safetensors", epoch);
      }
      write_results(o_.out_dir);
      records.push_back(rec);
      if (last) break;
    }
    return records;
  }

  // One training step on a batch: forward (with the taps), the task loss, the loss hook, backward;
  // every `accumulate` steps the optimizer steps and the EMA follows. The learning rate is the
  // caller's (run() schedules it). A non-finite loss stops training with the place it happened.
  StepResult step(const data::Batch& batch, int64_t accumulate = 1, int64_t epoch = 0) {
    PDYOLO_CHECK(accumulate >= 1, "train: accumulate must be at least 1");
    model_.graph.train();
    StepResult result = forward_backward(batch, epoch);
    if (o_.sparsity > 0) add_sparsity_subgradient(epoch);
    ++iteration_;
    if (iteration_ % accumulate == 0) {
      optimizer_.step();
      optimizer_.zero_grad();
      ema_.update(model_.graph);
      result.stepped = true;
    }
    return result;
  }

  // ∂L/∂w summed over the first `batches` batches of the training set (the loader, augmentation and
  // seed of run()), left in the model's tensors' gradients — what Taylor pruning scores. The model
  // stays in eval mode (batch norm uses, and keeps, its running statistics) and nothing steps.
  void accumulate_gradients(int64_t batches) {
    PDYOLO_CHECK(batches > 0, "train: accumulate_gradients needs at least one batch");
    data::DataLoader loader(train_, loader_options());
    const HostBlockCacheScope block_cache;
    optimizer_.zero_grad();
    model_.graph.eval();
    loader.start_epoch(0);
    ProgressBar bar("gradients", std::min<int64_t>(batches, loader.size()), o_.progress);
    data::Batch batch;
    for (int64_t b = 0; b < batches && loader.next(batch); ++b) {
      forward_backward(batch, 0);
      bar.update(b + 1);
    }
    bar.finish();
  }

  // The loss each step minimises (see LossHook); an empty hook restores the task loss.
  void set_loss_hook(LossHook hook) { loss_hook_ = std::move(hook); }
  // Taps on the model's nodes during training steps (features for distillation, fake quantization).
  // A node tapped twice runs both, the later one on what the earlier returned.
  void add_taps(const graph::Taps& taps) {
    for (const auto& [node, tap] : taps) {
      auto [it, added] = taps_.emplace(node, tap);
      if (!added) it->second = [first = it->second, then = tap](const Tensor& x) { return then(first(x)); };
    }
  }
  // Taps on the convs' weights during training steps (fake quantization).
  void set_weight_taps(graph::WeightTaps taps) { weight_taps_ = std::move(taps); }
  // How each epoch's EMA weights are evaluated on the validation split (default: eval::evaluate,
  // the float model; quantization-aware training evaluates its fake-quant simulation).
  using Evaluator = std::function<eval::EvalRun(const graph::Graph& ema, const data::Dataset& val, const eval::EvalOptions& options)>;
  void set_evaluator(Evaluator evaluator) { evaluator_ = std::move(evaluator); }
  // A tensor trained with the model but not part of it (distillation's feature adapters): optimised
  // in the weight-decay group, saved in checkpoints as train.aux.NAME (never in the model) and
  // restored by resume(). Add them before resume() and run().
  void add_trainable(const std::string& name, Tensor t) {
    PDYOLO_CHECK(iteration_ == 0 && !resumed_, "train: add_trainable('", name, "') must come before resume() and training");
    t.set_requires_grad();
    optimizer_.add_param(1, t);
    aux_.emplace_back(name, std::move(t));
  }
  // A tensor that is not trained but belongs to the run's state (quantization-aware training's
  // activation ranges): its owner updates it in place; saved and restored like add_trainable's.
  void add_state(const std::string& name, Tensor t) {
    PDYOLO_CHECK(iteration_ == 0 && !resumed_, "train: add_state('", name, "') must come before resume() and training");
    aux_.emplace_back(name, std::move(t));
  }
  // Training steps taken so far (restored by resume()).
  int64_t iteration() const { return iteration_; }

  // The EMA weights as a model of their own (what checkpoints hold and evaluation uses).
  models::YoloModel ema_model_copy() const {
    models::YoloModel copy{model_.graph.clone(), model_.names, model_.config};
    copy.graph.load_state_dict(ema_.state_dict());
    return copy;
  }

  void save_checkpoint(const std::string& path, int64_t epoch) const {
    std::map<std::string, Tensor> tensors = ema_.state_dict();  // inference weights under their own names
    for (const auto& [name, t] : model_.graph.state_dict()) tensors["train.model." + name] = t;
    for (const auto& [name, t] : aux_) tensors["train.aux." + name] = t;
    std::map<std::string, std::string> metadata = optimizer_state(tensors);
    std::ostringstream fitness;
    fitness.precision(17);
    fitness << best_fitness_;
    metadata.merge(models::model_metadata(model_));  // graph, names, config: the file is a model file too
    metadata.insert({{"pdyolo.epoch", std::to_string(epoch)},
                     {"pdyolo.iteration", std::to_string(iteration_)},
                     {"pdyolo.ema_updates", std::to_string(ema_.updates())},
                     {"pdyolo.best_fitness", fitness.str()},
                     {"pdyolo.history", history_csv_}});
    io::save_safetensors(path, tensors, metadata);
  }

  graph::Graph& graph() { return model_.graph; }
  // The model being trained, taken out of a trainer that is done with it (its tensors, gradients included).
  models::YoloModel release_model() && { return std::move(model_); }
  const ModelEMA& ema() const { return ema_; }

 private:
  void append_history(const EpochRecord& r) {
    char line[320];
    std::snprintf(line, sizeof line, "%lld,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.6f,%.8f,%.8f,%.8f,%.1f,%.6f\n", static_cast<long long>(r.epoch),
                  r.loss.box, r.loss.obj, r.loss.cls, r.loss.total, r.metrics.precision, r.metrics.recall, r.metrics.map50,
                  r.metrics.map50_95, r.lr[0], r.lr[1], r.lr[2], r.images_per_second, r.kd);
    history_csv_ += line;
  }

  void write_results(const std::string& dir) const;  // defined below (plots)

  data::LoaderOptions loader_options() const {
    data::LoaderOptions lo;
    lo.img_size = o_.img_size;
    lo.batch_size = o_.batch_size;
    lo.workers = o_.workers;
    lo.seed = o_.seed;
    lo.aug = data::AugmentOptions::from_hyp(hyp_);
    lo.cache_images = o_.cache_images;
    return lo;
  }

  // ∂/∂γ of S·Σ|γ| over the batch-norm weights: S·sign(γ), added to their gradients (TrainOptions::sparsity).
  void add_sparsity_subgradient(int64_t epoch) {
    const double s = o_.sparsity * (o_.sparsity_decay ? 1.0 - 0.9 * static_cast<double>(epoch) / static_cast<double>(o_.epochs) : 1.0);
    for (graph::Node& n : model_.graph.nodes) {
      if (n.op != graph::Op::batch_norm) continue;
      const Tensor& gamma = n.tensor("weight");
      const Tensor grad = gamma.grad();
      if (!grad.defined()) continue;  // frozen
      PDYOLO_CHECK(grad.is_contiguous() && gamma.is_contiguous() && grad.dtype() == DType::f32, "train: --sparsity needs f32 batch-norm weights");
      const float* w = gamma.data<float>();
      float* g = grad.data<float>();
      for (int64_t i = 0; i < grad.numel(); ++i) g[i] += static_cast<float>(s) * static_cast<float>((w[i] > 0) - (w[i] < 0));
    }
  }

  // Forward (with the taps), the task loss, the loss hook, backward, in the graph's current mode.
  StepResult forward_backward(const data::Batch& batch, int64_t epoch) {
    graph::RunOptions run;
    run.taps = &taps_;
    run.weight_taps = &weight_taps_;
    const graph::DetectOutput out = graph::forward(model_.graph, batch.images, run);
    const LossResult task = use_ota_ ? compute_loss_ota(out.raw, batch.targets, head_, loss_hyp_, o_.img_size)
                                     : compute_loss(out.raw, batch.targets, head_, loss_hyp_);
    const auto hook_start = std::chrono::steady_clock::now();
    const HookLoss hooked = loss_hook_ ? loss_hook_(LossContext{batch, out, task, epoch}) : HookLoss(task.loss);
    const Tensor& loss = hooked.loss;
    StepResult result{task.items, loss.item(), false, hooked.term,
                      loss_hook_ ? std::chrono::duration<double>(std::chrono::steady_clock::now() - hook_start).count() : 0.0};
    PDYOLO_CHECK(std::isfinite(result.total), "train: the loss became ", result.total, " at epoch ", epoch + 1, ", iteration ", iteration_,
                 "; stopped — the last checkpoint in ", o_.out_dir, " is the last good state");
    loss.backward();
    return result;
  }

  // The optimizer's per-parameter state as checkpoint tensors (train.momentum.G.I: SGD's buffer or
  // Adam's first moment; train.second_moment.G.I: Adam's second moment) and metadata (the kind,
  // Adam's step counts per group as a comma-separated list).
  std::map<std::string, std::string> optimizer_state(std::map<std::string, Tensor>& tensors) const {
    std::map<std::string, std::string> metadata{{"pdyolo.optimizer", optimizer_name(optimizer_.kind())}};
    for (size_t g = 0; g < optimizer_.groups.size(); ++g) {
      const ParamGroup& group = optimizer_.groups[g];
      std::string steps;
      for (size_t i = 0; i < group.params.size(); ++i) {
        const std::string suffix = std::to_string(g) + "." + std::to_string(i);
        if (group.momentum_buffers[i].defined()) tensors["train.momentum." + suffix] = group.momentum_buffers[i];
        if (group.second_moments[i].defined()) tensors["train.second_moment." + suffix] = group.second_moments[i];
        steps += (i ? "," : "") + std::to_string(group.steps[i]);
      }
      if (optimizer_.kind() != OptimizerKind::sgd) metadata["pdyolo.optimizer_steps." + std::to_string(g)] = steps;
    }
    return metadata;
  }

  void check_optimizer_kind(const io::SafetensorsContent& ck, const std::string& path) const {
    auto kind = ck.metadata.find("pdyolo.optimizer");  // absent in checkpoints from before Adam: SGD
    const std::string saved = kind == ck.metadata.end() ? "sgd" : kind->second;
    PDYOLO_CHECK(saved == optimizer_name(optimizer_.kind()), path, ": the checkpoint was trained with ", saved, ", not ",
                 optimizer_name(optimizer_.kind()), " — resume with the same optimizer flag");
  }

  void restore_optimizer_state(const io::SafetensorsContent& ck, const std::string& path) {
    for (size_t g = 0; g < optimizer_.groups.size(); ++g) {
      ParamGroup& group = optimizer_.groups[g];
      for (size_t i = 0; i < group.params.size(); ++i) {
        const std::string suffix = std::to_string(g) + "." + std::to_string(i);
        if (auto it = ck.tensors.find("train.momentum." + suffix); it != ck.tensors.end())
          group.momentum_buffers[i] = contiguous_copy(it->second);
        if (auto it = ck.tensors.find("train.second_moment." + suffix); it != ck.tensors.end())
          group.second_moments[i] = contiguous_copy(it->second);
      }
      if (auto it = ck.metadata.find("pdyolo.optimizer_steps." + std::to_string(g)); it != ck.metadata.end()) {
        std::istringstream list(it->second);
        std::string item;
        for (size_t i = 0; std::getline(list, item, ','); ++i) {
          PDYOLO_CHECK(i < group.steps.size(), path, ": pdyolo.optimizer_steps.", g, " lists more parameters than the group has");
          group.steps[i] = std::stoll(item);
        }
      }
    }
  }

  models::YoloModel model_;
  const data::Dataset& train_;
  const data::Dataset* val_;
  io::Value hyp_;
  TrainOptions o_;
  RecipeHyp recipe_;
  DetectHead head_;
  LossHyp loss_hyp_;
  Optimizer optimizer_;
  ModelEMA ema_;
  LossHook loss_hook_;
  graph::Taps taps_;
  graph::WeightTaps weight_taps_;
  Evaluator evaluator_;
  bool use_ota_ = true;
  int64_t start_epoch_ = 0, iteration_ = 0;
  double best_fitness_ = -1.0;
  bool val_problems_reported_ = false;
  bool resumed_ = false;
  std::vector<std::pair<std::string, Tensor>> aux_;  // add_trainable, add_state
  std::string history_csv_;
};

namespace detail {
// A chart of series against the epoch (1, 2, …), each in its own colour.
inline data::Image epoch_chart(const std::string& title, const std::vector<std::pair<std::string, std::vector<double>>>& series) {
  std::vector<viz::PlotSeries> lines;
  for (size_t s = 0; s < series.size(); ++s) {
    viz::PlotSeries line{series[s].first, {}, series[s].second, viz::class_color(static_cast<int64_t>(s) * 3 + 1), 2};
    for (size_t i = 0; i < line.y.size(); ++i) line.x.push_back(static_cast<double>(i + 1));
    lines.push_back(std::move(line));
  }
  viz::PlotOptions o;
  o.title = title;
  o.x_label = "epoch";
  return viz::plot_lines(o, lines);
}
}  // namespace detail

inline void Trainer::write_results(const std::string& dir) const {
  const std::string header = "epoch,box,obj,cls,total,precision,recall,map50,map50_95,lr0,lr1,lr2,images_per_s,kd\n";
  io::write_file_atomic(dir + "/results.csv", [&](std::ostream& out) { out << header << history_csv_; });
  std::vector<double> box, obj, cls, map50, map, kd;
  std::istringstream in(history_csv_);
  for (std::string line; std::getline(in, line);) {
    std::vector<double> v;
    std::istringstream fields(line);
    for (std::string f; std::getline(fields, f, ',');) v.push_back(std::stod(f));
    if (v.size() < 9) continue;
    box.push_back(v[1]), obj.push_back(v[2]), cls.push_back(v[3]), map50.push_back(v[7]), map.push_back(v[8]);
    kd.push_back(v.size() > 13 ? v[13] : 0.0);  // (histories from before the kd column)
  }
  std::vector<std::pair<std::string, std::vector<double>>> losses{{"box", box}, {"obj", obj}, {"cls", cls}};
  if (std::any_of(kd.begin(), kd.end(), [](double v) { return v != 0; })) losses.emplace_back("kd", kd);
  data::save_image(dir + "/losses.png", detail::epoch_chart("training losses", losses));
  data::save_image(dir + "/map.png", detail::epoch_chart("validation mAP", {{"mAP@.5", map50}, {"mAP@.5:.95", map}}));
}

}  // namespace pdyolo::train
