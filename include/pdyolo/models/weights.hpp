// Loading and saving whole models: official PyTorch checkpoints (.pt, with the config embedded or
// given separately) and pdyolo's own safetensors files (config and class names in the metadata).
#pragma once
#include <optional>
#include <string>

#include "pdyolo/io/pt.hpp"
#include "pdyolo/io/safetensors.hpp"
#include "pdyolo/models/yolo.hpp"

namespace pdyolo::models {

struct LoadOptions {
  std::optional<std::string> cfg;  // a YAML config, required for plain state dicts
  std::optional<int64_t> nc;       // replaces the config's nc
};

namespace detail {
inline bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}
inline bool has_reparam(const std::map<std::string, Tensor>& tensors) {
  for (const auto& [name, t] : tensors)
    if (name.find(".rbr_reparam.") != std::string::npos) return true;
  return false;
}
}  // namespace detail

inline YoloModel load_model(const std::string& weights, const LoadOptions& options = LoadOptions()) {
  std::map<std::string, Tensor> tensors;
  std::optional<ModelConfig> cfg;
  std::vector<std::string> names;
  if (options.cfg) cfg = load_model_config(*options.cfg, options.nc);
  if (detail::ends_with(weights, ".safetensors")) {
    io::SafetensorsContent content = io::load_safetensors(weights);
    tensors = std::move(content.tensors);
    if (!cfg) {
      auto it = content.metadata.find("pdyolo.config");
      PDYOLO_CHECK(it != content.metadata.end(), weights, ": no model config in the metadata; pass --cfg");
      cfg = parse_model_config(io::parse_json(it->second, weights + " (metadata 'pdyolo.config')"), weights, options.nc);
    }
    if (auto it = content.metadata.find("pdyolo.names"); it != content.metadata.end())
      for (const io::Value& n : io::parse_json(it->second, weights).items) names.push_back(n.str);
  } else {
    io::PtCheckpoint ckpt = io::load_pt(weights);
    tensors = std::move(ckpt.state_dict);
    names = std::move(ckpt.names);
    if (!cfg) {
      PDYOLO_CHECK(ckpt.config.has_value(), weights, ": the checkpoint holds only weights (no embedded model config); pass --cfg");
      cfg = parse_model_config(*ckpt.config, weights + " (embedded model.yaml)", options.nc);
    }
  }
  for (auto it = tensors.begin(); it != tensors.end();)  // training state in checkpoints is not part of the model
    it = it->first.rfind("train.", 0) == 0 ? tensors.erase(it) : std::next(it);
  YoloModel model = build_yolo(*cfg, BuildOptions{detail::has_reparam(tensors), 0});
  model.graph.load_state_dict(tensors, true, weights);
  model.names = std::move(names);
  return model;
}

inline void save_model(const std::string& path, const YoloModel& model) {
  io::Value names = io::Value::make_list();
  for (const std::string& n : model.names) names.items.push_back(io::Value::make_string(n));
  io::save_safetensors(path, model.graph.state_dict(),
                       {{"pdyolo.config", io::to_json(model.config.raw)}, {"pdyolo.names", io::to_json(names)}, {"format", "pt"}});
}

}  // namespace pdyolo::models
