// The official YOLOv7 model configuration — `nc`, `depth_multiple`, `width_multiple`, `anchors`,
// and `backbone` + `head` rows of [from, number, module, args] — read from a YAML file or from the
// dict an official checkpoint embeds. Arguments stay as io::Values; the builder interprets them
// the way the reference's parse_model evaluates them ('None', 'nc', 'anchors', 'nn.LeakyReLU(0.1)').
#pragma once
#include <cmath>
#include <cstdio>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "pdyolo/io/yaml.hpp"

namespace pdyolo::models {

struct LayerSpec {
  int index = 0;
  std::vector<int> from;        // absolute indices of the input layers (-1 resolved); -1 = the image
  std::vector<int> from_raw;    // as written in the config (for display)
  int number = 1;               // after depth_multiple
  std::string module;           // "Conv", "Concat", "nn.Upsample", …
  std::vector<io::Value> args;  // as written
  int line = 0;                 // source line (0 for configs from checkpoints)
};

struct ModelConfig {
  int64_t nc = 80;
  double depth_multiple = 1.0, width_multiple = 1.0;
  std::vector<std::vector<float>> anchors;  // per detection level: w0, h0, w1, h1, … in pixels
  int64_t in_channels = 3;
  std::vector<LayerSpec> layers;
  io::Value raw;       // the dict it was read from, with nc as used (embedded into saved weights)
  std::string source;  // file name, for messages
};

// The modules the builder implements.
inline const std::set<std::string>& known_modules() {
  static const std::set<std::string> modules = {"Conv", "Concat", "MP", "SP", "SPPCSPC", "RepConv", "Bottleneck",
                                                "nn.Upsample", "ReOrg", "Detect", "IDetect"};
  return modules;
}

namespace detail {

[[noreturn]] inline void config_error(const std::string& source, int line, const std::string& what) {
  if (line > 0) throw_error(source, ":", line, ": ", what);
  throw_error(source, ": ", what);
}

// A number field within [low, high] (finite), or `fallback` when absent.
inline double config_number(const io::Value& dict, const char* key, double fallback, const std::string& source, double low,
                            double high) {
  const io::Value* v = dict.find(key);
  if (!v) return fallback;
  if (!v->is_number()) config_error(source, v->line, std::string("field '") + key + "' must be a number, not " + io::value_kind_name(v->kind));
  const double x = v->as_double();
  if (!(x >= low && x <= high)) {  // also refuses NaN
    char what[160];
    std::snprintf(what, sizeof what, "field '%s' is %g; it must lie in [%g, %g]", key, x, low, high);
    config_error(source, v->line, what);
  }
  return x;
}

inline std::vector<std::vector<float>> parse_anchors(const io::Value& v, const std::string& source) {
  std::vector<std::vector<float>> levels;
  if (!v.is(io::Value::Kind::list) || v.items.empty())
    config_error(source, v.line, "field 'anchors' must be a list of per-level [w, h, …] lists");
  for (const io::Value& level : v.items) {
    if (!level.is(io::Value::Kind::list) || level.items.empty() || level.items.size() % 2)
      config_error(source, level.line, "field 'anchors': each level needs an even, non-zero count of numbers");
    std::vector<float> values;
    for (const io::Value& x : level.items) {
      if (!x.is_number()) config_error(source, x.line, "field 'anchors' holds a value that is not a number");
      values.push_back(static_cast<float>(x.as_double()));
    }
    if (!levels.empty() && values.size() != levels.front().size())
      config_error(source, level.line, "field 'anchors': every level needs the same number of anchors");
    levels.push_back(values);
  }
  return levels;
}

}  // namespace detail

// Reads a config dict; `nc_override` replaces nc (as the official --nc / data-file nc does).
inline ModelConfig parse_model_config(const io::Value& dict, const std::string& source,
                                      std::optional<int64_t> nc_override = std::nullopt) {
  using detail::config_error;
  ModelConfig cfg;
  cfg.source = source;
  cfg.raw = dict;
  if (!dict.is(io::Value::Kind::dict)) config_error(source, dict.line, "a model config must be a mapping");
  const io::Value* nc = dict.find("nc");
  if (!nc || !nc->is(io::Value::Kind::integer) || nc->integer < 1)
    config_error(source, nc ? nc->line : 0, "field 'nc' must be a positive integer");
  cfg.nc = nc_override.value_or(nc->integer);
  if (cfg.nc < 1) config_error(source, 0, "nc must be positive");
  cfg.raw.set("nc", io::Value::make_int(cfg.nc));
  cfg.depth_multiple = detail::config_number(dict, "depth_multiple", 1.0, source, 1e-3, 16.0);
  cfg.width_multiple = detail::config_number(dict, "width_multiple", 1.0, source, 1e-3, 16.0);
  cfg.in_channels = static_cast<int64_t>(detail::config_number(dict, "ch", 3, source, 1, 64));
  const io::Value* anchors = dict.find("anchors");
  if (!anchors) config_error(source, dict.line, "missing field 'anchors'");
  cfg.anchors = detail::parse_anchors(*anchors, source);

  for (const char* section : {"backbone", "head"}) {
    const io::Value* rows = dict.find(section);
    if (!rows || !rows->is(io::Value::Kind::list))
      config_error(source, rows ? rows->line : dict.line, std::string("field '") + section + "' must be a list of [from, number, module, args] rows");
    for (const io::Value& row : rows->items) {
      LayerSpec layer;
      layer.index = static_cast<int>(cfg.layers.size());
      layer.line = row.line;
      const std::string where = "layer " + std::to_string(layer.index) + ": ";
      if (!row.is(io::Value::Kind::list) || row.items.size() != 4)
        config_error(source, row.line, where + "expected [from, number, module, args]");
      const io::Value& from = row.items[0];
      std::vector<io::Value> froms = from.is(io::Value::Kind::list) ? from.items : std::vector<io::Value>{from};
      if (froms.empty()) config_error(source, from.line ? from.line : row.line, where + "field 'from' is an empty list: a layer needs an input");
      for (const io::Value& f : froms) {
        if (!f.is(io::Value::Kind::integer)) config_error(source, f.line ? f.line : row.line, where + "field 'from' must be an integer or a list of integers");
        if (f.integer < -(int64_t{1} << 20) || f.integer > (int64_t{1} << 20))
          config_error(source, f.line ? f.line : row.line, where + "field 'from' refers to layer " + std::to_string(f.integer) +
                                                             ", which does not precede it");
        const int absolute = f.integer < 0 ? layer.index + static_cast<int>(f.integer) : static_cast<int>(f.integer);
        const bool is_image = layer.index == 0 && f.integer == -1;  // the first layer reads the image
        if (!is_image && (absolute < 0 || absolute >= layer.index))
          config_error(source, row.line, where + "field 'from' refers to layer " + std::to_string(f.integer) +
                                             ", which does not precede it");
        layer.from.push_back(absolute);
        layer.from_raw.push_back(static_cast<int>(f.integer));
      }
      const io::Value& number = row.items[1];
      if (!number.is(io::Value::Kind::integer) || number.integer < 1 || number.integer > 1000)
        config_error(source, row.line, where + "field 'number' must be an integer in [1, 1000]");
      layer.number = number.integer > 1 ? std::max(1, static_cast<int>(std::round(number.integer * cfg.depth_multiple))) : 1;
      const io::Value& module = row.items[2];
      if (!module.is(io::Value::Kind::string)) config_error(source, row.line, where + "field 'module' must be a name");
      layer.module = module.str;
      if (!known_modules().count(layer.module))
        config_error(source, row.line, where + "field 'module': unknown module '" + layer.module + "'");
      if (!row.items[3].is(io::Value::Kind::list)) config_error(source, row.line, where + "field 'args' must be a list");
      layer.args = row.items[3].items;
      cfg.layers.push_back(std::move(layer));
    }
  }
  if (cfg.layers.empty()) config_error(source, dict.line, "the config has no layers");
  return cfg;
}

inline ModelConfig load_model_config(const std::string& path, std::optional<int64_t> nc_override = std::nullopt) {
  return parse_model_config(io::load_yaml(path), path, nc_override);
}

}  // namespace pdyolo::models
