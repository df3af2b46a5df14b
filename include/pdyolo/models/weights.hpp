// Loading and saving whole models: pdyolo's own safetensors files, which carry their graph (so any
// model — a pruned one too — reloads without a config), and official PyTorch checkpoints (.pt, the
// model rebuilt from the config they embed or one given separately).
//
// A pdyolo model file's metadata: 'pdyolo.graph' (graph/serialize.hpp, JSON), 'pdyolo.names' (the
// class names, JSON), 'pdyolo.config' (the YAML config it came from, as JSON, when there is one),
// and 'format': 'pt'. Older files without 'pdyolo.graph' are rebuilt from 'pdyolo.config'.
#pragma once
#include <optional>
#include <string>

#include "pdyolo/graph/serialize.hpp"
#include "pdyolo/io/pt.hpp"
#include "pdyolo/io/safetensors.hpp"
#include "pdyolo/models/yolo.hpp"

namespace pdyolo::models {

struct LoadOptions {
  std::optional<std::string> cfg;  // a YAML config: required for plain state dicts; rebuilds any model from it
  std::optional<int64_t> nc;       // replaces the config's nc (a saved graph's nc must equal it)
  int64_t max_parameters = BuildOptions().max_parameters;  // a model built from a config is refused above this
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
inline std::vector<std::string> parse_names(const std::string& json, const std::string& source) {
  std::vector<std::string> names;
  const io::Value list = io::parse_json(json, source + " (metadata 'pdyolo.names')");
  PDYOLO_CHECK(list.is(io::Value::Kind::list), source, ": metadata 'pdyolo.names' must be a list of strings");
  for (const io::Value& n : list.items) {
    PDYOLO_CHECK(n.is(io::Value::Kind::string), source, ": metadata 'pdyolo.names' must be a list of strings");
    names.push_back(n.str);
  }
  return names;
}
inline const std::string* find_metadata(const std::map<std::string, std::string>& metadata, const std::string& key) {
  auto it = metadata.find(key);
  return it == metadata.end() ? nullptr : &it->second;
}
}  // namespace detail

// A model file's bytes → model: safetensors when `weights` (the name errors use) ends in
// .safetensors, else a PyTorch checkpoint.
inline YoloModel parse_model(std::vector<char> bytes, const std::string& weights, const LoadOptions& options = LoadOptions()) {
  std::map<std::string, Tensor> tensors;
  std::optional<ModelConfig> cfg;
  std::optional<io::Value> saved_graph;
  std::vector<std::string> names;
  if (options.cfg) cfg = load_model_config(*options.cfg, options.nc);
  if (detail::ends_with(weights, ".safetensors")) {
    io::SafetensorsContent content = io::parse_safetensors(bytes, weights);
    tensors = std::move(content.tensors);
    const auto& metadata = content.metadata;
    if (const std::string* g = detail::find_metadata(metadata, "pdyolo.graph"))
      saved_graph = io::parse_json(*g, weights + " (metadata 'pdyolo.graph')");
    const std::string* config_json = detail::find_metadata(metadata, "pdyolo.config");
    if (!cfg && config_json)  // the config is kept with a saved graph; it builds the model only without one
      cfg = parse_model_config(io::parse_json(*config_json, weights + " (metadata 'pdyolo.config')"), weights, options.nc);
    PDYOLO_CHECK(cfg || saved_graph, weights, ": neither a graph nor a model config in the metadata; pass --cfg");
    if (const std::string* n = detail::find_metadata(metadata, "pdyolo.names")) names = detail::parse_names(*n, weights);
  } else {
    io::PtCheckpoint ckpt = io::parse_pt(io::ZipArchive(std::move(bytes), weights));
    tensors = std::move(ckpt.state_dict);
    names = std::move(ckpt.names);
    if (!cfg) {
      PDYOLO_CHECK(ckpt.config.has_value(), weights, ": the checkpoint holds only weights (no embedded model config); pass --cfg");
      cfg = parse_model_config(*ckpt.config, weights + " (embedded model.yaml)", options.nc);
    }
  }
  for (auto it = tensors.begin(); it != tensors.end();)  // training state in checkpoints is not part of the model
    it = it->first.rfind("train.", 0) == 0 ? tensors.erase(it) : std::next(it);
  YoloModel model;
  if (saved_graph && !options.cfg) {
    model.graph = graph::graph_from_value(*saved_graph, tensors, weights + " (metadata 'pdyolo.graph')");
    model.config = cfg;
    PDYOLO_CHECK(!options.nc || *options.nc == model.nc(), weights, ": the saved model detects ", model.nc(), " classes; --nc ",
                 *options.nc, " cannot change a saved graph");
  } else {
    model = build_yolo(*cfg, BuildOptions{detail::has_reparam(tensors), 0, options.max_parameters});
    model.graph.load_state_dict(tensors, true, weights);
  }
  model.names = std::move(names);
  return model;
}

inline YoloModel load_model(const std::string& weights, const LoadOptions& options = LoadOptions()) {
  return parse_model(io::read_file(weights), weights, options);
}

// The metadata that makes a model file describe itself (see the top of this file).
inline std::map<std::string, std::string> model_metadata(const YoloModel& model) {
  io::Value names = io::Value::make_list();
  for (const std::string& n : model.names) names.items.push_back(io::Value::make_string(n));
  std::map<std::string, std::string> metadata{{"pdyolo.graph", io::to_json(graph::graph_to_value(model.graph))},
                                              {"pdyolo.names", io::to_json(names)},
                                              {"format", "pt"}};
  if (model.config) metadata["pdyolo.config"] = io::to_json(model.config->raw);
  return metadata;
}

inline void save_model(const std::string& path, const YoloModel& model) {
  io::save_safetensors(path, model.graph.state_dict(), model_metadata(model));
}

// The size of the file save_model would write: a like-for-like size for a model read from a
// training checkpoint (which also holds the EMA and optimizer state) or a .pt.
inline uint64_t model_file_bytes(const YoloModel& model) {
  const io::SafetensorsLayout layout = io::safetensors_layout(model.graph.state_dict(), model_metadata(model), "(model)");
  return 8 + layout.header.size() + layout.data_bytes;
}

}  // namespace pdyolo::models
