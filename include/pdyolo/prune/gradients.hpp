// The loss gradients that Taylor importance scores channels by (prune.hpp: Importance::taylor and
// kd_taylor), for a one-shot prune and for each step of the iterative loop (iterative.hpp).
#pragma once
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "pdyolo/distill/distiller.hpp"
#include "pdyolo/prune/prune.hpp"
#include "pdyolo/train/trainer.hpp"

namespace pdyolo::prune {

struct GradientOptions {
  train::TrainOptions train;       // batch size, image size, workers, seed, progress
  io::Value hyp;                   // the loss's hyperparameters (hyp.*.yaml)
  int64_t batches = 1;             // how many batches the gradients are summed over
  const models::YoloModel* teacher = nullptr;  // kd_taylor: the teacher (the student is the model)
  std::string teacher_name = "the teacher";  // for messages (a file name)
  distill::KdMode kd_mode = distill::KdMode::kl;  // kd_taylor: an output loss (kl, bce or mse)
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

// The model with ∂L/∂w, summed over o.batches batches of `set`, left in its tensors: L the task loss
// (taylor) or the distillation loss alone against o.teacher (kd_taylor). The model runs in eval mode
// (train::Trainer::accumulate_gradients) and nothing is trained. Refuses a teacher that is the model
// itself (no gradient) and gradients that are all 0.
inline models::YoloModel with_importance_gradients(models::YoloModel model, Importance importance, const data::Dataset& set,
                                                   const GradientOptions& o) {
  PDYOLO_CHECK(needs_gradients(importance), "prune: importance ", importance_name(importance), " needs no gradients");
  PDYOLO_CHECK(o.train.batch_size > 0 && o.batches > 0, "prune: the batch size and the number of batches must be positive, got ",
               o.train.batch_size, " and ", o.batches);
  const bool kd = importance == Importance::kd_taylor;
  PDYOLO_CHECK(!kd || o.teacher, "prune: importance kd-taylor needs a teacher");
  std::optional<distill::Distiller> distiller;
  if (kd) {
    distill::KdOptions ko;
    ko.mode = o.kd_mode;
    PDYOLO_CHECK(ko.mode == distill::KdMode::kl || ko.mode == distill::KdMode::bce || ko.mode == distill::KdMode::mse,
                 "prune: importance kd-taylor differentiates an output loss (kd mode kl, bce or mse): feature modes need trained adapters");
    ko.alpha = 0, ko.beta = 1;  // the distillation loss alone
    PDYOLO_CHECK(!same_weights(o.teacher->graph, model.graph), o.teacher_name,
                 ": the teacher is the model being pruned — a model distilled from itself has no gradient; use another (larger) teacher");
    distiller.emplace(models::YoloModel{o.teacher->graph.clone(), o.teacher->names, o.teacher->config}, model, ko, o.train.seed, o.teacher_name);
  }
  train::Trainer trainer(std::move(model), set, nullptr, o.hyp, o.train);
  if (distiller) distiller->attach(trainer);
  trainer.accumulate_gradients(o.batches);
  model = std::move(trainer).release_model();
  double total = 0;
  for (const auto& [name, t] : model.graph.state_dict())
    if (const Tensor grad = t.grad(); grad.defined())
      for (float v : grad.to_vector()) total += std::fabs(v);
  PDYOLO_CHECK(total > 0, "prune: importance ", importance_name(importance), ": every gradient is 0");
  return model;
}

}  // namespace pdyolo::prune
