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

namespace detail {

inline io::Value int_list(const std::vector<int>& v) {
  io::Value list = io::Value::make_list();
  for (int x : v) list.items.push_back(io::Value::make_int(x));
  return list;
}

// Writes an attribute struct's fields (graph/node.hpp) into a JSON mapping.
class AttributeWriter {
 public:
  explicit AttributeWriter(io::Value& dict) : dict_(dict) {}
  void integer(const char* name, int64_t v, int64_t) { dict_.set(name, io::Value::make_int(v)); }
  void real(const char* name, float v) { dict_.set(name, io::Value::make_real(v)); }
  void activation(const char* name, Activation a) { dict_.set(name, io::Value::make_string(activation_name(a))); }
  void positive_reals(const char* name, const std::vector<float>& values) {
    io::Value list = io::Value::make_list();
    for (float v : values) list.items.push_back(io::Value::make_real(v));
    dict_.set(name, list);
  }

 private:
  io::Value& dict_;
};

inline io::Value attrs_value(const Node& n) {
  io::Value a = io::Value::make_dict();
  std::visit([&](const auto& attrs) {
    AttributeWriter writer(a);
    attrs.fields(attrs, writer);
  }, n.attrs);
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
  for (const OpDesc& op : kOpTable)
    if (name == op.name) return op.op;
  r.fail("op", "'" + name + "' is not an op pdyolo knows");
}

// Reads an attribute struct's fields (graph/node.hpp) from the node's "attrs" mapping, each in the
// range its struct declares.
class AttributeReader {
 public:
  AttributeReader(const NodeReader& r, const io::Value& dict) : r_(r), dict_(dict) {}
  void integer(const char* name, int64_t& v, int64_t low) { v = r_.integer(dict_, name, field(name), low, kMaxAttribute); }
  void real(const char* name, float& v) { v = static_cast<float>(r_.real(dict_, name, field(name))); }
  void activation(const char* name, Activation& a) {
    const io::Value& kind = r_.get(dict_, name, field(name));
    if (!kind.is(io::Value::Kind::string)) r_.fail(field(name), "must be a string");
    for (Activation known : kAllActivations)
      if (kind.str == activation_name(known)) {
        a = known;
        return;
      }
    r_.fail(field(name), "'" + kind.str + "' is not an activation pdyolo knows");
  }
  void positive_reals(const char* name, std::vector<float>& values) {
    const io::Value& list = r_.get(dict_, name, field(name));
    if (!list.is(io::Value::Kind::list)) r_.fail(field(name), "must be a list of numbers");
    values.clear();
    for (const io::Value& v : list.items) {
      if (!v.is_number() || !(v.as_double() > 0)) r_.fail(field(name), "must be a list of positive numbers");
      values.push_back(static_cast<float>(v.as_double()));
    }
  }

 private:
  static std::string field(const char* name) { return std::string("attrs.") + name; }
  const NodeReader& r_;
  const io::Value& dict_;
};

inline Attrs parse_attrs(const NodeReader& r, Op op) {
  const io::Value& dict = r.field("attrs");
  if (!dict.is(io::Value::Kind::dict)) r.fail("attrs", "must be a mapping");
  Attrs attrs = describe(op).default_attrs();
  std::visit([&](auto& a) {
    AttributeReader reader(r, dict);
    a.fields(a, reader);
  }, attrs);
  return attrs;
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
