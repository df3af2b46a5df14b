// `pdyolo train`, with the official flag names.
#pragma once
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/train/trainer.hpp"

namespace pdyolo::cli {

// pdyolo train --cfg FILE --data DATA --hyp FILE --epochs N --batch-size B --img-size S [--weights W] [--resume [CKPT]]
//              [--workers K] [--seed S] [--out DIR] [--notest] [--split NAME] [--linear-lr] [--adam | --adamw]
inline int run_train(int argc, char** argv) {
  // --resume may stand alone (resume OUT/last.safetensors) or name a checkpoint.
  std::vector<char*> rest(argv, argv + argc);
  std::string resume;
  bool resuming = false;
  for (size_t i = 2; i < rest.size(); ++i)
    if (std::string(rest[i]) == "--resume") {
      resuming = true;
      if (i + 1 < rest.size() && std::string(rest[i + 1]).rfind("--", 0) != 0) {
        resume = rest[i + 1];
        rest.erase(rest.begin() + static_cast<int64_t>(i), rest.begin() + static_cast<int64_t>(i) + 2);
      } else {
        rest.erase(rest.begin() + static_cast<int64_t>(i));
      }
      break;
    }
  const Args args(static_cast<int>(rest.size()), rest.data(), 2,
                  {"--cfg", "--data", "--hyp", "--epochs", "--batch-size", "--img-size", "--weights", "--workers", "--seed", "--out",
                   "--split", "--nc"},
                  {"--notest", "--linear-lr", "--no-progress", "--cache", "--adam", "--adamw"});
  train::TrainOptions o;
  o.epochs = args.integer("--epochs", 300);
  o.batch_size = args.integer("--batch-size", 16);
  o.img_size = args.integer("--img-size", 640);
  o.workers = static_cast<int>(args.integer("--workers", 2));
  o.seed = static_cast<uint64_t>(args.integer("--seed", 0));
  o.out_dir = args.str("--out", "runs/train");
  o.evaluate_each_epoch = !args.has("--notest");
  o.linear_lr = args.has("--linear-lr");
  o.progress = !args.has("--no-progress");
  o.cache_images = args.has("--cache");
  PDYOLO_CHECK(!(args.has("--adam") && args.has("--adamw")), "--adam and --adamw exclude each other");
  if (args.has("--adam")) o.optimizer = train::OptimizerKind::adam;
  if (args.has("--adamw")) o.optimizer = train::OptimizerKind::adamw;
  PDYOLO_CHECK(o.epochs > 0 && o.batch_size > 0, "--epochs and --batch-size must be positive");
  PDYOLO_CHECK(o.img_size > 0 && o.img_size % 32 == 0, "--img-size must be a positive multiple of 32, got ", o.img_size);
  const std::string data_path = args.required("--data");
  // --split names one split used for both training and validation (e.g. a VOC folder's train2017).
  const data::Dataset train_set = data::load_dataset(data_path, args.str("--split", "train"));
  const data::Dataset val_set = data::load_dataset(data_path, args.str("--split", "val"));
  train_set.report(std::cerr);
  const io::Value hyp = io::load_yaml(args.str("--hyp", "cfg/hyp/hyp.scratch.tiny.yaml"));
  auto [model, source] = model_from_args(args, static_cast<int64_t>(train_set.names.size()), o.seed);
  model.names = train_set.names;
  std::printf("training %s: %lld images, %lld classes, %lld epochs, batch %lld, %lldx%lld, %d workers -> %s\n",
              source.c_str(), static_cast<long long>(train_set.samples.size()), static_cast<long long>(train_set.names.size()),
              static_cast<long long>(o.epochs), static_cast<long long>(o.batch_size), static_cast<long long>(o.img_size),
              static_cast<long long>(o.img_size), o.workers, o.out_dir.c_str());
  train::Trainer trainer(std::move(model), train_set, &val_set, hyp, o);
  if (resuming) trainer.resume(resume.empty() ? o.out_dir + "/last.safetensors" : resume);
  const auto records = trainer.run(std::cout);
  if (!records.empty() && records.back().evaluated)
    std::printf("final: P %.4f R %.4f mAP@.5 %.4f mAP@.5:.95 %.4f; weights in %s/last.safetensors and best.safetensors\n",
                records.back().metrics.precision, records.back().metrics.recall, records.back().metrics.map50, records.back().metrics.map50_95,
                o.out_dir.c_str());
  return 0;
}

}  // namespace pdyolo::cli
