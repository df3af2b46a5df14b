// The one way the commands get a model: --weights FILE (any model file: pdyolo's safetensors, an
// official .pt, a checkpoint; --cfg then rebuilds a plain state dict's model), or --cfg FILE alone
// for a randomly initialised model (seeded).
#pragma once
#include <optional>
#include <string>

#include "cli_args.hpp"
#include "pdyolo/models/weights.hpp"

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
};

inline LoadedModel model_from_args(const Args& args, std::optional<int64_t> nc = std::nullopt, uint64_t seed = 0) {
  if (!nc && args.declares("--nc") && args.has("--nc")) nc = args.integer("--nc");
  if (args.has("--weights")) {
    models::LoadOptions options;
    if (args.has("--cfg")) options.cfg = args.str("--cfg");
    options.nc = nc;
    return {models::load_model(args.str("--weights"), options), args.str("--weights")};
  }
  PDYOLO_CHECK(args.has("--cfg"), "pass a model: --weights FILE (.safetensors or .pt) or --cfg FILE (random weights)");
  return {models::build_yolo(models::load_model_config(args.str("--cfg"), nc), {false, seed}), args.str("--cfg") + " (random weights)"};
}

}  // namespace pdyolo::cli
