// The one way the commands get a model: --weights FILE (any model file: pdyolo's safetensors, an
// official .pt, a checkpoint; --cfg then rebuilds a plain state dict's model), or --cfg FILE alone
// for a randomly initialised model (seeded).
#pragma once
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "cli_args.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/quant/model_file.hpp"

namespace pdyolo::cli {

// The flags every command taking a model declares.
inline Flag weights_flag() { return {"--weights", "W", "", "a model file: .safetensors (pdyolo's) or .pt (official)"}; }
inline Flag cfg_flag(const std::string& help = "a model config (YAML); alone: a randomly initialised model") {
  return {"--cfg", "FILE", "", help};
}
inline Flag nc_flag() { return {"--nc", "N", "", "number of classes (replaces the config's)"}; }
inline Flag img_size_flag() { return {"--img-size", "S", "640", "input size in pixels (a multiple of 32)"}; }

struct LoadedModel {
  models::YoloModel model;
  std::string source;  // what it came from, for messages: "FILE" or "CFG (random weights)"
  std::optional<quant::QuantPlan> int8;  // an int8 model file's plan (its graph is fused, its weights dequantized)
};

// int8_ok: the command runs int8 model files (pdyolo quantize's); the others refuse them by name.
inline LoadedModel model_from_args(const Args& args, std::optional<int64_t> nc = std::nullopt, uint64_t seed = 0, bool int8_ok = false) {
  if (!nc && args.declares("--nc") && args.has("--nc")) nc = args.integer("--nc");
  if (args.has("--weights")) {
    const std::string weights = args.str("--weights");
    if (models::detail::ends_with(weights, ".safetensors") && quant::is_quantized(io::load_safetensors_metadata(weights))) {
      PDYOLO_CHECK(int8_ok, weights, ": an int8 model file (pdyolo quantize's); this command needs a float model — eval, detect, forward, "
                   "bench and info run int8 files");
      quant::QuantizedModel q = quant::load_quantized(weights);
      return {std::move(q.model), weights, std::move(q.plan)};
    }
    models::LoadOptions options;
    if (args.declares("--cfg") && args.has("--cfg")) options.cfg = args.str("--cfg");
    options.nc = nc;
    return {models::load_model(weights, options), weights, std::nullopt};
  }
  PDYOLO_CHECK(args.declares("--cfg") && args.has("--cfg"), "pass a model: --weights FILE (.safetensors or .pt) or --cfg FILE (random weights)");
  return {models::build_yolo(models::load_model_config(args.str("--cfg"), nc), {false, seed}), args.str("--cfg") + " (random weights)",
          std::nullopt};
}

// What runs an int8 model: the planned int8 executor with the int8 conv kernel this CPU has (or isa).
inline std::string int8_runtime_name(kernels::cpu::QconvIsa isa = kernels::cpu::best_qconv_isa()) {
  return std::string("integer runtime, int8 kernel ") + kernels::cpu::qconv_isa_name(isa);
}

// --int8-kernel best|amx|avx512-vnni|avx2|neon-sdot|neon|generic.
inline kernels::cpu::QconvIsa int8_kernel_from_args(const Args& args) {
  const std::string k = args.str("--int8-kernel");
  const kernels::cpu::QconvIsa isa = k == "best"          ? kernels::cpu::best_qconv_isa()
                                     : k == "amx"         ? kernels::cpu::QconvIsa::amx
                                     : k == "avx512-vnni" ? kernels::cpu::QconvIsa::avx512_vnni
                                     : k == "neon-sdot"   ? kernels::cpu::QconvIsa::neon_dotprod
                                     : k == "neon"        ? kernels::cpu::QconvIsa::neon
                                     : k == "avx2"        ? kernels::cpu::QconvIsa::avx2
                                     : k == "generic"     ? kernels::cpu::QconvIsa::generic
                                                          : throw Error("--int8-kernel must be best, amx, avx512-vnni, avx2, neon-sdot, neon or generic, got '" + k + "'");
  PDYOLO_CHECK(kernels::cpu::qconv_isa_available(isa), "--int8-kernel ", k, ": this CPU cannot run it");
  return isa;
}

// How a loaded model runs for inference: a float model fused on the planned executor (what bench
// times), an int8 model on the integer runtime (quant/integer.hpp, its fast kernels). images [N, C, S, S] in [0, 1] → the raw
// maps (when asked for) and the decoded boxes.
using InferenceFn = std::function<graph::DetectOutput(const Tensor& images, bool raw)>;

inline InferenceFn inference_of(const LoadedModel& loaded) {
  if (loaded.int8) {
    auto integer = std::make_shared<quant::IntegerModel>(loaded.model.graph, *loaded.int8);
    return [integer](const Tensor& images, bool raw) {
      return integer->run(images, nullptr, true, raw);
    };
  }
  auto fused = std::make_shared<graph::Graph>(loaded.model.graph.clone());
  graph::fuse(*fused);
  fused->eval();
  auto executor = std::make_shared<graph::Executor>(*fused);
  return [fused, executor](const Tensor& images, bool raw) {
    (void)fused;  // held here: the executor refers to it
    return executor->run(images, raw);
  };
}

}  // namespace pdyolo::cli
