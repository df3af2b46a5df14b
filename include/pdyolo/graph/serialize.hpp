// The graph as a tree of values (what a model file's metadata 'pdyolo.graph' holds as JSON), and
// back. Nodes are stored with their op, name, inputs, config row, attributes, the names of the
// tensors they own (and which are buffers) and their output channel count — derived from the
// tensors, stored so a reader can see the widths, and checked against the tensors on the way back.
//
//   {"version": 1, "layer_output": [...], "nodes": [
//     {"name": "model.0.conv", "op": "conv", "inputs": [0], "layer": 0, "channels": 32,
//      "attrs": {"kernel": 3, "stride": 2, "padding": 1, "groups": 1}, "tensors": ["weight"]}, ...]}
#pragma once
#include <map>
#include <set>
#include <string>

#include "pdyolo/graph/channels.hpp"
#include "pdyolo/io/json.hpp"

namespace pdyolo::graph {

inline constexpr int64_t kGraphFormatVersion = 1;

inline const char* activation_name(Activation a) {
  switch (a) {
    case Activation::identity: return "identity";
    case Activation::silu: return "silu";
    case Activation::leaky_relu: return "leaky_relu";
    case Activation::relu: return "relu";
  }
  return "?";
}

namespace detail {

inline io::Value int_value(int64_t v) { return io::Value::make_int(v); }
inline io::Value int_list(const std::vector<int>& v) {
  io::Value list = io::Value::make_list();
  for (int x : v) list.items.push_back(io::Value::make_int(x));
  return list;
}

inline io::Value attrs_value(const Node& n) {
  io::Value a = io::Value::make_dict();
  std::visit(
      [&](const auto& attrs) {
        using T = std::decay_t<decltype(attrs)>;
        if constexpr (std::is_same_v<T, InputAttrs>) {
          a.set("channels", int_value(attrs.channels));
        } else if constexpr (std::is_same_v<T, ConvAttrs>) {
          a.set("kernel", int_value(attrs.kernel)), a.set("stride", int_value(attrs.stride));
          a.set("padding", int_value(attrs.padding)), a.set("groups", int_value(attrs.groups));
        } else if constexpr (std::is_same_v<T, BatchNormAttrs>) {
          a.set("eps", io::Value::make_real(attrs.eps)), a.set("momentum", io::Value::make_real(attrs.momentum));
        } else if constexpr (std::is_same_v<T, ActivationAttrs>) {
          a.set("kind", io::Value::make_string(activation_name(attrs.kind))), a.set("slope", io::Value::make_real(attrs.slope));
        } else if constexpr (std::is_same_v<T, PoolAttrs>) {
          a.set("kernel", int_value(attrs.kernel)), a.set("stride", int_value(attrs.stride)), a.set("padding", int_value(attrs.padding));
        } else if constexpr (std::is_same_v<T, UpsampleAttrs>) {
          a.set("scale", int_value(attrs.scale));
        } else if constexpr (std::is_same_v<T, DetectAttrs>) {
          a.set("nc", int_value(attrs.nc)), a.set("na", int_value(attrs.na));
          io::Value strides = io::Value::make_list();
          for (float s : attrs.strides) strides.items.push_back(io::Value::make_real(s));
          a.set("strides", strides);
        }
      },
      n.attrs);
  return a;
}

// Reads fields of one node's JSON with errors naming the source, the node and the field.
class NodeReader {
 public:
  NodeReader(const io::Value& node, std::string where) : node_(node), where_(std::move(where)) {
    if (!node.is(io::Value::Kind::dict)) fail("", "must be a mapping");
  }
  [[noreturn]] void fail(const std::string& field, const std::string& what) const {
    throw_error(where_, field.empty() ? "" : ": field '" + field + "'", " ", what);
  }
  const io::Value& get(const io::Value& dict, const std::string& key, const std::string& field) const {
    const io::Value* v = dict.find(key);
    if (!v) fail(field, "is missing");
    return *v;
  }
  const io::Value& field(const std::string& key) const { return get(node_, key, key); }
  std::string str(const std::string& key) const {
    const io::Value& v = field(key);
    if (!v.is(io::Value::Kind::string)) fail(key, "must be a string");
    return v.str;
  }
  int64_t integer(const io::Value& dict, const std::string& key, const std::string& field, int64_t low, int64_t high) const {
    const io::Value& v = get(dict, key, field);
    if (!v.is(io::Value::Kind::integer) || v.integer < low || v.integer > high)
      fail(field, "must be an integer in [" + std::to_string(low) + ", " + std::to_string(high) + "]");
    return v.integer;
  }
  double real(const io::Value& dict, const std::string& key, const std::string& field) const {
    const io::Value& v = get(dict, key, field);
    if (!v.is_number()) fail(field, "must be a number");
    return v.as_double();
  }
  std::vector<std::string> strings(const std::string& key) const {
    std::vector<std::string> out;
    const io::Value* v = node_.find(key);
    if (!v) return out;
    if (!v->is(io::Value::Kind::list)) fail(key, "must be a list of strings");
    for (const io::Value& s : v->items) {
      if (!s.is(io::Value::Kind::string)) fail(key, "must be a list of strings");
      out.push_back(s.str);
    }
    return out;
  }

 private:
  const io::Value& node_;
  std::string where_;
};

inline Op parse_op(const NodeReader& r, const std::string& name) {
  for (Op op : {Op::input, Op::conv, Op::batch_norm, Op::activation, Op::add, Op::concat, Op::max_pool, Op::upsample,
                Op::implicit_add, Op::implicit_mul, Op::detect})
    if (name == op_name(op)) return op;
  r.fail("op", "'" + name + "' is not an op pdyolo knows");
}

inline Activation parse_activation(const NodeReader& r, const std::string& name) {
  for (Activation a : {Activation::identity, Activation::silu, Activation::leaky_relu, Activation::relu})
    if (name == activation_name(a)) return a;
  r.fail("attrs.kind", "'" + name + "' is not an activation pdyolo knows");
}

inline Attrs parse_attrs(const NodeReader& r, Op op) {
  constexpr int64_t big = int64_t{1} << 20;  // no sane kernel, stride, padding or channel count exceeds it
  const io::Value* a = r.field("attrs").is(io::Value::Kind::dict) ? &r.field("attrs") : nullptr;
  if (!a) r.fail("attrs", "must be a mapping");
  switch (op) {
    case Op::input: return InputAttrs{r.integer(*a, "channels", "attrs.channels", 1, big)};
    case Op::conv:
      return ConvAttrs{r.integer(*a, "kernel", "attrs.kernel", 1, big), r.integer(*a, "stride", "attrs.stride", 1, big),
                       r.integer(*a, "padding", "attrs.padding", 0, big), r.integer(*a, "groups", "attrs.groups", 1, big)};
    case Op::batch_norm:
      return BatchNormAttrs{static_cast<float>(r.real(*a, "eps", "attrs.eps")), static_cast<float>(r.real(*a, "momentum", "attrs.momentum"))};
    case Op::activation: {
      const io::Value& kind = r.get(*a, "kind", "attrs.kind");
      if (!kind.is(io::Value::Kind::string)) r.fail("attrs.kind", "must be a string");
      return ActivationAttrs{parse_activation(r, kind.str), static_cast<float>(r.real(*a, "slope", "attrs.slope"))};
    }
    case Op::max_pool:
      return PoolAttrs{r.integer(*a, "kernel", "attrs.kernel", 1, big), r.integer(*a, "stride", "attrs.stride", 1, big),
                       r.integer(*a, "padding", "attrs.padding", 0, big)};
    case Op::upsample: return UpsampleAttrs{r.integer(*a, "scale", "attrs.scale", 1, big)};
    case Op::detect: {
      DetectAttrs d{r.integer(*a, "nc", "attrs.nc", 1, big), r.integer(*a, "na", "attrs.na", 1, big), {}};
      const io::Value& strides = r.get(*a, "strides", "attrs.strides");
      if (!strides.is(io::Value::Kind::list)) r.fail("attrs.strides", "must be a list of numbers");
      for (const io::Value& s : strides.items) {
        if (!s.is_number() || s.as_double() <= 0) r.fail("attrs.strides", "must be a list of positive numbers");
        d.strides.push_back(static_cast<float>(s.as_double()));
      }
      return d;
    }
    default: return std::monostate{};
  }
}

}  // namespace detail

inline io::Value graph_to_value(const Graph& g) {
  io::Value nodes = io::Value::make_list();
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    io::Value v = io::Value::make_dict();
    v.set("name", io::Value::make_string(n.name));
    v.set("op", io::Value::make_string(op_name(n.op)));
    v.set("inputs", detail::int_list(n.inputs));
    v.set("layer", io::Value::make_int(n.layer));
    v.set("channels", io::Value::make_int(g.channels(static_cast<int>(i))));
    if (n.fixed_channels) v.set("fixed_channels", io::Value::make_bool(true));
    v.set("attrs", detail::attrs_value(n));
    io::Value tensors = io::Value::make_list(), buffers = io::Value::make_list();
    for (const auto& [local, t] : n.tensors) {
      tensors.items.push_back(io::Value::make_string(local));
      if (!t.requires_grad()) buffers.items.push_back(io::Value::make_string(local));
    }
    v.set("tensors", tensors);
    if (!buffers.items.empty()) v.set("buffers", buffers);
    nodes.items.push_back(std::move(v));
  }
  io::Value root = io::Value::make_dict();
  root.set("version", io::Value::make_int(kGraphFormatVersion));
  root.set("layer_output", detail::int_list(g.layer_output));
  root.set("nodes", nodes);
  return root;
}

// Rebuilds a graph from graph_to_value's tree; each node takes its tensors from `tensors` (by
// checkpoint name; parameters require grad, buffers do not). Every tensor must be claimed by a node.
// validate() runs on the result, and each node's stored channel count must match its tensors.
inline Graph graph_from_value(const io::Value& root, const std::map<std::string, Tensor>& tensors, const std::string& source) {
  PDYOLO_CHECK(root.is(io::Value::Kind::dict), source, ": the graph must be a mapping");
  const io::Value* version = root.find("version");
  PDYOLO_CHECK(version && version->is(io::Value::Kind::integer) && version->integer == kGraphFormatVersion, source,
               ": graph format version ", version && version->is(io::Value::Kind::integer) ? std::to_string(version->integer) : "?",
               " is not the version ", kGraphFormatVersion, " this build reads");
  const io::Value* nodes = root.find("nodes");
  PDYOLO_CHECK(nodes && nodes->is(io::Value::Kind::list) && !nodes->items.empty(), source, ": field 'nodes' must be a non-empty list");
  Graph g;
  std::set<std::string> claimed;
  std::vector<int64_t> stored_channels;
  for (size_t i = 0; i < nodes->items.size(); ++i) {
    const io::Value& v = nodes->items[i];
    const io::Value* name = v.is(io::Value::Kind::dict) ? v.find("name") : nullptr;
    const detail::NodeReader r(v, source + ": node " + std::to_string(i) +
                                      (name && name->is(io::Value::Kind::string) ? " ('" + name->str + "')" : ""));
    Node n;
    n.name = r.str("name");
    n.op = detail::parse_op(r, r.str("op"));
    const io::Value& inputs = r.field("inputs");
    if (!inputs.is(io::Value::Kind::list)) r.fail("inputs", "must be a list of node indices");
    for (const io::Value& in : inputs.items) {
      if (!in.is(io::Value::Kind::integer) || in.integer < 0 || in.integer >= static_cast<int64_t>(i))
        r.fail("inputs", "must hold indices of earlier nodes");
      n.inputs.push_back(static_cast<int>(in.integer));
    }
    n.layer = static_cast<int>(r.integer(v, "layer", "layer", -1, int64_t{1} << 20));
    if (const io::Value* fixed = v.find("fixed_channels")) {
      if (!fixed->is(io::Value::Kind::boolean)) r.fail("fixed_channels", "must be true or false");
      n.fixed_channels = fixed->boolean;
    }
    n.attrs = detail::parse_attrs(r, n.op);
    const std::vector<std::string> buffers = r.strings("buffers");
    for (const std::string& local : r.strings("tensors")) {
      const std::string full = n.name + "." + local;
      auto it = tensors.find(full);
      if (it == tensors.end()) r.fail("tensors", "names '" + local + "' but the file has no tensor '" + full + "'");
      const bool buffer = std::find(buffers.begin(), buffers.end(), local) != buffers.end();
      Tensor t = it->second.detach();
      if (t.dtype() == DType::f16) t = t.to(DType::f32);  // half-precision files compute in f32
      if (!buffer) t.set_requires_grad();
      n.tensors.emplace_back(local, t);
      claimed.insert(full);
    }
    stored_channels.push_back(r.integer(v, "channels", "channels", 0, int64_t{1} << 40));
    g.nodes.push_back(std::move(n));
  }
  if (const io::Value* outputs = root.find("layer_output")) {
    PDYOLO_CHECK(outputs->is(io::Value::Kind::list), source, ": field 'layer_output' must be a list of node indices");
    for (const io::Value& o : outputs->items) {
      PDYOLO_CHECK(o.is(io::Value::Kind::integer) && o.integer >= 0 && o.integer < static_cast<int64_t>(g.nodes.size()), source,
                   ": field 'layer_output' must hold node indices");
      g.layer_output.push_back(static_cast<int>(o.integer));
    }
  }
  for (const auto& [name, t] : tensors)
    PDYOLO_CHECK(claimed.count(name), source, ": tensor '", name, "' belongs to no node of the graph");
  validate(g);
  for (size_t i = 0; i < g.nodes.size(); ++i)
    PDYOLO_CHECK(g.channels(static_cast<int>(i)) == stored_channels[i], source, ": node ", i, " ('", g.nodes[i].name, "') says ",
                 stored_channels[i], " channels but its tensors give ", g.channels(static_cast<int>(i)));
  return g;
}

}  // namespace pdyolo::graph
