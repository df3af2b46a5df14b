// pdyolo — the command-line tool. Each pipeline stage is a subcommand:
//   pdyolo info --weights W | --cfg FILE [--nc N] [--img-size S] [--verbose] [--groups] [--json]
//   pdyolo convert --weights W | --cfg FILE [--nc N] [--seed S] [--fuse] --out OUT.safetensors
//   pdyolo forward --weights W [--cfg FILE] --input X.npy --out DIR [--fuse]
//   pdyolo detect --weights W --source IMG|DIR [--img-size 640] [--conf-thres 0.25] [--iou-thres 0.45] --out DIR
//   pdyolo eval --weights W --data DATA [--split NAME] [--img-size 640] [--protocol coco|voc07|voc12] [--out DIR] [--json]
//   pdyolo train --cfg FILE --data DATA [--hyp FILE] --epochs N --batch-size B --img-size S [--weights W] [--resume [CKPT]] …
//   pdyolo bench --weights W | --cfg FILE [--img-size 640] [--batch-size 1] [--threads 2] [--runs 100] [--json] [--profile]
//   pdyolo demo [--epochs N] [--seed S] [--threads T]   train a small conv net on a synthetic task
//   pdyolo version
#include <cstring>
#include <iostream>
#include <string>

#include "cli_bench.hpp"
#include "cli_eval.hpp"
#include "cli_model.hpp"
#include "cli_train.hpp"
#include "shapes_demo.hpp"

namespace {

int usage(std::ostream& os, int code) {
  os << "usage: pdyolo <command> [options]\n\n"
        "commands:\n"
        "  info     layers, parameters, GFLOPs and channel groups of a model (any model file) or a config\n"
        "           --weights W | --cfg FILE  [--nc N] [--img-size 640] [--verbose] [--groups] [--json]\n"
        "  convert  write any model as a self-describing .safetensors (graph, names, config in its metadata);\n"
        "           --cfg alone writes a randomly initialised model\n"
        "           --weights W | --cfg FILE  [--nc N] [--seed 0] [--fuse] --out OUT.safetensors\n"
        "  forward  run a checkpoint (.pt or .safetensors) on an input .npy, write raw maps and decoded boxes\n"
        "           --weights W  [--cfg FILE] [--nc N] --input X.npy --out DIR [--fuse]\n"
        "  detect   annotate images with a model's detections; writes images and detections.json\n"
        "           --weights W --source IMG|DIR --out DIR [--img-size 640] [--conf-thres 0.25] [--iou-thres 0.45]\n"
        "  eval     mAP of a model on a dataset (dataset YAML or VOC folder)\n"
        "           --weights W --data DATA [--split val] [--img-size 640] [--conf-thres 0.001] [--iou-thres 0.65]\n"
        "           [--protocol coco|voc07|voc12] [--batch-size 8] [--out DIR] [--json]\n"
        "  train    train a model (official flags): --cfg FILE --data DATA [--hyp FILE] [--epochs 300] [--batch-size 16]\n"
        "           [--img-size 640] [--weights W] [--resume [CKPT]] [--workers 2] [--seed 0] [--out runs/train] [--notest]\n"
        "           [--split NAME] [--linear-lr] [--cache] [--adam | --adamw]\n"
        "  bench    inference latency (P50/P95/P99), images/s and peak RSS; --profile: time per layer and op\n"
        "           --weights W | --cfg FILE  [--img-size 640] [--batch-size 1] [--threads 2] [--runs 100] [--warmup 5]\n"
        "           [--executor planned|graph] [--profile] [--json]\n"
        "  demo     train a small conv net on the built-in synthetic shapes task\n"
        "           --epochs N (6)  --seed S (0)  --threads T (all cores)\n"
        "  version  print the version and the kernels this CPU uses\n";
  return code;
}

long long parse_int(const char* flag, const char* value) {
  char* end = nullptr;
  const long long v = std::strtoll(value, &end, 10);
  if (*value == '\0' || *end != '\0') pdyolo::throw_error("option ", flag, ": '", value, "' is not an integer");
  return v;
}

int run_demo(int argc, char** argv) {
  pdyolo::examples::ShapesDemoOptions options;
  for (int i = 2; i < argc; ++i) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) pdyolo::throw_error("option ", flag, " needs a value");
    const char* value = argv[++i];
    if (flag == "--epochs") options.epochs = parse_int("--epochs", value);
    else if (flag == "--seed") options.seed = static_cast<uint64_t>(parse_int("--seed", value));
    else if (flag == "--threads") pdyolo::set_num_threads(static_cast<int>(parse_int("--threads", value)));
    else pdyolo::throw_error("demo: unknown option ", flag);
  }
  const auto history = pdyolo::examples::run_shapes_demo(options, &std::cout);
  std::cout << "loss " << history.front().loss << " -> " << history.back().loss << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return usage(std::cerr, 2);
  const std::string command = argv[1];
  try {
    if (command == "demo") return run_demo(argc, argv);
    if (command == "info") return pdyolo::cli::run_info(argc, argv);
    if (command == "convert") return pdyolo::cli::run_convert(argc, argv);
    if (command == "eval") return pdyolo::cli::run_eval(argc, argv);
    if (command == "train") return pdyolo::cli::run_train(argc, argv);
    if (command == "detect") return pdyolo::cli::run_detect(argc, argv);
    if (command == "forward") return pdyolo::cli::run_forward(argc, argv);
    if (command == "bench") return pdyolo::cli::run_bench(argc, argv);
    if (command == "version") {
      std::cout << "pdyolo " << PDYOLO_VERSION << "\nthreads: " << pdyolo::num_threads()
                << "\ngemm micro-kernel: "
                << pdyolo::kernels::cpu::gemm_micro_kernel(pdyolo::kernels::cpu::gemm_isa()).name << "\n";
      return 0;
    }
    if (command == "-h" || command == "--help" || command == "help") return usage(std::cout, 0);
    std::cerr << "pdyolo: unknown command '" << command << "'\n";
    return usage(std::cerr, 2);
  } catch (const pdyolo::Error& e) {
    std::cerr << "pdyolo: error: " << e.what() << "\n";
    return 1;
  }
}
