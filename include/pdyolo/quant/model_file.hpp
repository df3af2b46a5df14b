// The int8 model file: a safetensors model file like any other — the fused graph, names and config
// in the metadata — whose convs are stored in integer form, about a quarter of the float size:
//
//   quant.<conv>.weight        I8  [out, in / groups, k, k]
//   quant.<conv>.weight_scale  F32 [out]
//   quant.<conv>.bias          I32 [out]  at s_x · s_w
//   metadata "pdyolo.quant"    {"version": 2, "observer": …, "groups": [[scale, zero_point], …],
//                               "group_of": [group per node, −1 for the float head],
//                               "float_convs": [node, …]}
//
// Convs kept in float (mixed precision, version 2) and other tensors (the anchor grid) are stored as
// they are. Loading rebuilds the graph with the
// dequantized float weights (q · s) and biases, so that every pass that reads a graph works on it,
// and the plan with the stored int32 biases, so that the integer runtime computes exactly what was
// saved.
#pragma once
#include <string>

#include "pdyolo/io/json.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/quant/runtime.hpp"

namespace pdyolo::quant {

inline constexpr int64_t kQuantFormatVersion = 2;  // reads 1 (no float convs) and 2

struct QuantizedModel {
  models::YoloModel model;  // fused, with dequantized weights
  QuantPlan plan;
};

inline bool is_quantized(const std::map<std::string, std::string>& metadata) { return metadata.count("pdyolo.quant") > 0; }

inline void save_quantized(const std::string& path, const models::YoloModel& fused, const IntegerModel& integer, const std::string& observer) {
  const graph::Graph& g = integer.graph();
  const QuantPlan& plan = integer.plan();
  std::map<std::string, Tensor> tensors;
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i) {
    const graph::Node& n = g.nodes[static_cast<size_t>(i)];
    if (n.op != graph::Op::conv || plan.in_float(i)) {
      for (const auto& [local, t] : n.tensors) tensors[n.name + "." + local] = t;
      continue;
    }
    const IntegerConv& c = integer.conv(i);
    const Shape shape = n.tensor("weight").shape();
    Tensor w = Tensor::empty(shape, DType::i8);
    std::copy(c.weight.begin(), c.weight.end(), w.data<int8_t>());
    Tensor b = Tensor::empty({c.out_channels}, DType::i32);
    std::copy(c.bias.begin(), c.bias.end(), b.data<int32_t>());
    tensors["quant." + n.name + ".weight"] = w;
    tensors["quant." + n.name + ".weight_scale"] = Tensor::from_vector(plan.weight_scales[static_cast<size_t>(i)], {c.out_channels});
    tensors["quant." + n.name + ".bias"] = b;
  }
  io::Value groups = io::Value::make_list(), group_of = io::Value::make_list();
  for (const QParams& p : plan.params) {
    io::Value pair = io::Value::make_list();
    pair.items.push_back(io::Value::make_real(p.scale));
    pair.items.push_back(io::Value::make_int(p.zero_point));
    groups.items.push_back(pair);
  }
  for (int group : plan.group_of) group_of.items.push_back(io::Value::make_int(group));
  io::Value float_convs = io::Value::make_list();
  for (int i = 0; i < static_cast<int>(g.nodes.size()); ++i)
    if (plan.in_float(i)) float_convs.items.push_back(io::Value::make_int(i));
  io::Value q = io::Value::make_dict();
  q.set("version", io::Value::make_int(kQuantFormatVersion));
  q.set("observer", io::Value::make_string(observer));
  q.set("groups", groups);
  q.set("group_of", group_of);
  q.set("float_convs", float_convs);
  models::YoloModel described{g.clone(), fused.names, fused.config};
  std::map<std::string, std::string> metadata = models::model_metadata(described);
  metadata["pdyolo.quant"] = io::to_json(q);
  io::save_safetensors(path, tensors, metadata);
}

namespace detail {
inline const io::Value& field(const io::Value& v, const std::string& key, const std::string& where) {
  const io::Value* f = v.find(key);
  PDYOLO_CHECK(f, where, ": no field '", key, "'");
  return *f;
}
inline const std::string& string_field(const io::Value& v, const std::string& key, const std::string& where) {
  const io::Value& f = field(v, key, where);
  PDYOLO_CHECK(f.kind == io::Value::Kind::string, where, ": field '", key, "' is not a string");
  return f.str;
}
}  // namespace detail

inline QuantizedModel load_quantized(const std::string& path) {
  io::SafetensorsContent content = io::load_safetensors(path);
  PDYOLO_CHECK(is_quantized(content.metadata), path, ": not an int8 model file (no 'pdyolo.quant' in the metadata); quantize it with pdyolo quantize");
  const std::string where = path + " (metadata 'pdyolo.quant')";
  const io::Value q = io::parse_json(content.metadata.at("pdyolo.quant"), where);
  const double version = detail::field(q, "version", where).as_double();
  PDYOLO_CHECK(version == 1 || version == kQuantFormatVersion, where, ": format version ", version, ", this pdyolo reads 1 to ",
               kQuantFormatVersion);
  QuantPlan plan;
  for (const io::Value& pair : detail::field(q, "groups", where).items) {
    PDYOLO_CHECK(pair.items.size() == 2 && pair.items[0].is_number() && pair.items[1].is_number(), where, ": a group is not [scale, zero_point]");
    // Checked as doubles, before any conversion (a zero point of 1e300 or a scale of 1e38 once
    // reached undefined float → integer conversions).
    const double scale = pair.items[0].as_double(), zero_point = pair.items[1].as_double();
    PDYOLO_CHECK(valid_scale(scale) && zero_point >= kActivationMin && zero_point <= kActivationMax && zero_point == std::floor(zero_point),
                 where, ": group ", plan.params.size(), " has scale ", scale, " and zero point ", zero_point, " (a scale lies in [",
                 kMinScale, ", ", kMaxScale, "], a zero point is an integer in [", kActivationMin, ", ", kActivationMax, "])");
    plan.params.push_back({static_cast<float>(scale), static_cast<int32_t>(zero_point)});
  }
  plan.groups = static_cast<int>(plan.params.size());
  for (const io::Value& v : detail::field(q, "group_of", where).items) {
    PDYOLO_CHECK(v.is_number() && v.as_double() >= -1 && v.as_double() < plan.groups, where, ": 'group_of' names a group that does not exist");
    plan.group_of.push_back(static_cast<int>(v.as_double()));
  }
  // The graph's nodes (names, ops, inputs) before it is built: the convs' float tensors come first.
  const std::string graph_where = path + " (metadata 'pdyolo.graph')";
  PDYOLO_CHECK(content.metadata.count("pdyolo.graph"), path, ": no graph in the metadata");
  const io::Value graph_json = io::parse_json(content.metadata.at("pdyolo.graph"), graph_where);
  const std::vector<io::Value>& nodes = detail::field(graph_json, "nodes", graph_where).items;
  PDYOLO_CHECK(nodes.size() == plan.group_of.size(), where, ": 'group_of' has ", plan.group_of.size(), " entries for ", nodes.size(), " nodes");
  plan.input_group = plan.group_of.empty() ? -1 : plan.group_of[0];
  plan.float_convs.assign(nodes.size(), false);
  if (const io::Value* float_convs = q.find("float_convs")) {
    for (const io::Value& v : float_convs->items) {
      PDYOLO_CHECK(v.is_number() && v.as_double() >= 0 && v.as_double() < static_cast<double>(nodes.size()) &&
                       detail::string_field(nodes[static_cast<size_t>(v.as_double())], "op", graph_where) == "conv",
                   where, ": 'float_convs' names a node that is not a conv");
      plan.float_convs[static_cast<size_t>(v.as_double())] = true;
    }
  }
  plan.weight_scales.resize(nodes.size());
  plan.biases.resize(nodes.size());
  std::map<std::string, Tensor> tensors;
  for (auto& [name, t] : content.tensors)
    if (name.rfind("quant.", 0) != 0) tensors[name] = t;
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (detail::string_field(nodes[i], "op", graph_where) != "conv" || plan.float_convs[i]) continue;
    const std::string name = detail::string_field(nodes[i], "name", graph_where);
    const auto tensor = [&](const std::string& suffix, DType dtype) {
      const auto it = content.tensors.find("quant." + name + "." + suffix);
      PDYOLO_CHECK(it != content.tensors.end() && it->second.dtype() == dtype, path, ": conv '", name, "' has no ", dtype_name(dtype),
                   " tensor quant.", name, ".", suffix);
      return contiguous_copy(it->second);
    };
    const Tensor w = tensor("weight", DType::i8), s = tensor("weight_scale", DType::f32), b = tensor("bias", DType::i32);
    const int64_t out = w.dim() == 4 ? w.shape()[0] : -1;
    PDYOLO_CHECK(out > 0 && s.numel() == out && b.numel() == out, path, ": conv '", name, "': weight, scales and bias disagree on the channels");
    const io::Value& inputs = detail::field(nodes[i], "inputs", graph_where);
    PDYOLO_CHECK(!inputs.items.empty() && inputs.items[0].is_number() && inputs.items[0].as_double() >= 0 &&
                     inputs.items[0].as_double() < static_cast<double>(i),
                 graph_where, ": conv '", name, "' has no earlier input");
    const int input = static_cast<int>(inputs.items[0].as_double());
    PDYOLO_CHECK(plan.group_of[static_cast<size_t>(input)] >= 0, where, ": conv '", name, "' reads a value that is not quantized");
    const float input_scale = plan.params[static_cast<size_t>(plan.group_of[static_cast<size_t>(input)])].scale;
    plan.weight_scales[i] = s.to_vector();
    plan.biases[i].assign(b.data<int32_t>(), b.data<int32_t>() + out);
    Tensor wf = Tensor::empty(w.shape()), bf = Tensor::empty({out});
    const int64_t per_channel = w.numel() / out;
    for (int64_t o = 0; o < out; ++o) {
      const float scale = plan.weight_scales[i][static_cast<size_t>(o)];
      PDYOLO_CHECK(valid_scale(scale), path, ": conv '", name, "' has weight scale ", scale, " (outside [", kMinScale, ", ", kMaxScale, "])");
      for (int64_t k = 0; k < per_channel; ++k) {
        const int8_t v = w.data<int8_t>()[o * per_channel + k];
        PDYOLO_CHECK(v >= -kWeightMax, path, ": conv '", name, "' holds the weight −128 (the scheme's range is ±127)");
        wf.data<float>()[o * per_channel + k] = static_cast<float>(v) * scale;
      }
      bf.data<float>()[o] = static_cast<float>(plan.biases[i][static_cast<size_t>(o)] * (static_cast<double>(input_scale) * scale));
    }
    tensors[name + ".weight"] = wf;
    tensors[name + ".bias"] = bf;
  }
  QuantizedModel result;
  result.model.graph = graph::graph_from_value(graph_json, tensors, graph_where);
  if (content.metadata.count("pdyolo.names")) result.model.names = models::detail::parse_names(content.metadata.at("pdyolo.names"), path);
  result.model.graph.eval();
  result.plan = std::move(plan);
  return result;
}

}  // namespace pdyolo::quant
