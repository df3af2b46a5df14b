// `pdyolo train`, with the official flag names.
#pragma once
#include <iostream>
#include <optional>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/distill/distiller.hpp"
#include "pdyolo/train/trainer.hpp"

namespace pdyolo::cli {

// The distillation flags of train and qat.
inline std::vector<Flag> distill_flags(const std::string& teacher_help) {
  return {{"--teacher", "T", "", teacher_help},
          {"--kd", "MODE", "kl", "distillation loss: kl, bce, mse, feature or cwd"},
          {"--kd-alpha", "A", "0.7", "weight of the task loss"}, {"--kd-beta", "B", "0.3", "weight of the distillation loss"},
          {"--kd-temperature", "T", "3", "softmax temperature of kl"}, {"--kd-tau", "T", "1", "softmax temperature of cwd"},
          {"--kd-mask", "M", "teacher-obj", "cell weights: teacher-obj or none (kl, feature), gt (feature)"},
          {"--kd-stop-epoch", "E", "-1", "train on the task loss alone from epoch E (counted from 0; -1: never)"}};
}

// A distiller from the distillation flags (none without --teacher), attached by the caller.
inline std::optional<distill::Distiller> distiller_from_args(const Args& args, models::YoloModel teacher, const std::string& teacher_name,
                                                             const models::YoloModel& student, uint64_t seed) {
  distill::KdOptions kd;
  kd.mode = distill::parse_kd_mode(args.str("--kd"));
  kd.alpha = args.real("--kd-alpha"), kd.beta = args.real("--kd-beta");
  kd.temperature = args.real("--kd-temperature"), kd.tau = args.real("--kd-tau");
  kd.mask = distill::parse_kd_mask(args.str("--kd-mask"));
  kd.stop_epoch = args.integer("--kd-stop-epoch");
  std::optional<distill::Distiller> distiller;
  distiller.emplace(std::move(teacher), student, kd, seed, teacher_name);
  std::printf("distilling from %s (%s): L = %g·task + %g·KD\n", teacher_name.c_str(), args.str("--kd").c_str(), kd.alpha, kd.beta);
  return distiller;
}

inline std::vector<Flag> with_flags(std::vector<Flag> flags, const std::vector<Flag>& more) {
  flags.insert(flags.end(), more.begin(), more.end());
  return flags;
}

inline const CommandSpec& train_spec() {
  static const CommandSpec spec{
      "train",
      "train a model (the official train.py's flags)",
      with_flags({cfg_flag("the model config (YAML), when no --weights"), {"--data", "DATA", "", "dataset YAML or VOC folder"},
       {"--hyp", "FILE", "cfg/hyp/hyp.scratch.tiny.yaml", "hyperparameters"}, {"--epochs", "N", "300", "epochs"},
       {"--batch-size", "B", "16", "images per batch"}, img_size_flag(), {"--weights", "W", "", "start from a model file"},
       {"--resume", "CKPT", "", "resume a run (alone: OUT/last.safetensors)", true}, workers_flag(),
       {"--seed", "S", "0", "seed of everything random"}, {"--out", "DIR", "runs/train", "where results and checkpoints go"},
       {"--split", "NAME", "", "one split for both training and validation (default: train and val)"}, nc_flag(),
       {"--notest", "", "", "evaluate only after the last epoch"}, {"--linear-lr", "", "", "linear learning-rate decay"},
       no_progress_flag(), cache_flag(),
       {"--adam", "", "", "Adam instead of SGD"}, {"--adamw", "", "", "AdamW instead of SGD"},
       {"--sparsity", "S", "0", "network slimming: add S·sign(γ) to batch-norm weights' gradients (1e-4 is typical; then prune --importance bn)"},
       {"--sparsity-decay", "", "", "S falls linearly to 0.1·S over the run"}},
                 distill_flags("distil from this model (.pt or .safetensors): same classes, anchors and strides"))};
  return spec;
}

// The options train and qat share: epochs, batch, size, workers, seed, progress, cache.
inline train::TrainOptions train_options_from_args(const Args& args) {
  train::TrainOptions o;
  o.epochs = args.integer("--epochs");
  o.batch_size = args.integer("--batch-size");
  o.img_size = args.integer("--img-size");
  o.workers = static_cast<int>(args.integer("--workers"));
  o.seed = static_cast<uint64_t>(args.integer("--seed"));
  o.progress = !args.has("--no-progress");
  o.cache_images = args.has("--cache");
  PDYOLO_CHECK(o.epochs > 0 && o.batch_size > 0, "--epochs and --batch-size must be positive");
  PDYOLO_CHECK(o.img_size > 0 && o.img_size % 32 == 0, "--img-size must be a positive multiple of 32, got ", o.img_size);
  return o;
}

inline int run_train(const Args& args) {
  const bool resuming = args.has("--resume");
  const std::string resume = args.str("--resume");
  train::TrainOptions o = train_options_from_args(args);
  o.out_dir = args.str("--out");
  o.evaluate_each_epoch = !args.has("--notest");
  o.linear_lr = args.has("--linear-lr");
  PDYOLO_CHECK(!(args.has("--adam") && args.has("--adamw")), "--adam and --adamw exclude each other");
  if (args.has("--adam")) o.optimizer = train::OptimizerKind::adam;
  if (args.has("--adamw")) o.optimizer = train::OptimizerKind::adamw;
  o.sparsity = args.real("--sparsity");
  o.sparsity_decay = args.has("--sparsity-decay");
  PDYOLO_CHECK(o.sparsity >= 0, "--sparsity must not be negative, got ", o.sparsity);
  PDYOLO_CHECK(o.sparsity > 0 || !o.sparsity_decay, "--sparsity-decay needs --sparsity");
  const std::string data_path = args.required("--data");
  // --split names one split used for both training and validation (e.g. a VOC folder's train2017).
  const data::Dataset train_set = data::load_dataset(data_path, args.has("--split") ? args.str("--split") : "train");
  const data::Dataset val_set = data::load_dataset(data_path, args.has("--split") ? args.str("--split") : "val");
  train_set.report(std::cerr);
  const io::Value hyp = io::load_yaml(args.str("--hyp"));
  LoadedModel loaded = model_from_args(args, static_cast<int64_t>(train_set.names.size()), o.seed);
  models::YoloModel& model = loaded.model;
  const std::string& source = loaded.source;
  model.names = train_set.names;
  std::printf("training %s: %lld images, %lld classes, %lld epochs, batch %lld, %lldx%lld, %d workers -> %s\n",
              source.c_str(), static_cast<long long>(train_set.samples.size()), static_cast<long long>(train_set.names.size()),
              static_cast<long long>(o.epochs), static_cast<long long>(o.batch_size), static_cast<long long>(o.img_size),
              static_cast<long long>(o.img_size), o.workers, o.out_dir.c_str());
  std::optional<distill::Distiller> distiller;
  if (args.has("--teacher")) distiller = distiller_from_args(args, models::load_model(args.str("--teacher")), args.str("--teacher"), model, o.seed);
  train::Trainer trainer(std::move(model), train_set, &val_set, hyp, o);
  if (distiller) distiller->attach(trainer);
  if (resuming) trainer.resume(resume.empty() ? o.out_dir + "/last.safetensors" : resume);
  const auto records = trainer.run(std::cout);
  if (!records.empty() && records.back().evaluated)
    std::printf("final: P %.4f R %.4f mAP@.5 %.4f mAP@.5:.95 %.4f; weights in %s/last.safetensors and best.safetensors\n",
                records.back().metrics.precision, records.back().metrics.recall, records.back().metrics.map50, records.back().metrics.map50_95,
                o.out_dir.c_str());
  return 0;
}

}  // namespace pdyolo::cli
