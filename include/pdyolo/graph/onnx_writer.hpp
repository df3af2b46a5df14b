// What an op's ONNX mapping (the `onnx` column of the op table, graph/ops.hpp) writes with: the
// names of a node's input and output values, its tensors as initializers, constants, and ONNX nodes
// named after it. graph/onnx_export.hpp walks the graph and calls each node's row.
#pragma once
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/core/shape.hpp"
#include "pdyolo/core/tensor.hpp"
#include "pdyolo/graph/node.hpp"
#include "pdyolo/io/onnx.hpp"

namespace pdyolo::graph {

class OnnxNodeWriter {
 public:
  // value_names: per node, the ONNX name of its output.
  // shapes: per node, [N, C, H, W] at the exported image size; grid: the detect head decodes its
  // boxes into one output (the official export's --grid) instead of writing the raw maps.
  // float_type: of the values, weights and constants (float16: the whole graph in half precision).
  OnnxNodeWriter(io::onnx::GraphWriter& out, const std::vector<Node>& nodes, std::vector<std::string> value_names, const std::vector<Shape>& shapes,
                 bool grid = false, io::onnx::DataType float_type = io::onnx::DataType::float32)
      : out_(out), nodes_(nodes), names_(std::move(value_names)), shapes_(shapes), grid_(grid), float_type_(float_type) {}

  bool grid() const { return grid_; }

  // The ONNX name of input j of n, and of n's output.
  const std::string& input(const Node& n, size_t j) const { return names_.at(static_cast<size_t>(n.inputs.at(j))); }
  const std::string& output(const Node& n) const { return names_.at(index_of(n)); }
  // n's output shape [N, C, H, W] at the exported size.
  const Shape& shape(const Node& n) const { return shapes_.at(index_of(n)); }
  const Shape& input_shape(const Node& n, size_t j) const { return shapes_.at(static_cast<size_t>(n.inputs.at(j))); }

  // n's tensor `local` as an initializer of the graph's float type, named like the checkpoint's
  // ("model.0.conv.weight"), reshaped to `dims` when given.
  std::string tensor(const Node& n, const std::string& local, const std::vector<int64_t>& dims = {}) {
    const Tensor t = contiguous_copy(n.tensor(local).detach().to(DType::f32));
    const std::vector<float> values(t.data<float>(), t.data<float>() + t.numel());
    return add_floats(n.name + "." + local, values, dims.empty() ? std::vector<int64_t>(t.shape().begin(), t.shape().end()) : dims, float_type_);
  }
  // A constant initializer named after n.
  std::string int64s(const Node& n, const std::string& what, const std::vector<int64_t>& values) {
    const std::string name = n.name + "/" + what;
    out_.add_initializer(io::onnx::tensor(name, io::onnx::DataType::int64, {static_cast<int64_t>(values.size())}, values.data()));
    return name;
  }
  // Of the graph's float type (operands of its arithmetic), and always f32 (what an op's definition
  // types as float whatever the data, e.g. Resize's scales).
  std::string floats(const Node& n, const std::string& what, const std::vector<float>& values, const std::vector<int64_t>& dims = {}) {
    return add_floats(n.name + "/" + what, values, dims, float_type_);
  }
  std::string floats_f32(const Node& n, const std::string& what, const std::vector<float>& values) {
    return add_floats(n.name + "/" + what, values, {}, io::onnx::DataType::float32);
  }
  // A name for an intermediate value of n's mapping.
  std::string temp(const Node& n, const std::string& what) const { return n.name + "/" + what; }

  // An ONNX node, named n's name / op_type (/ k for the k-th of that type within n).
  void add(const Node& n, const std::string& op_type, const std::vector<std::string>& inputs, const std::vector<std::string>& outputs,
           const std::vector<io::onnx::Attribute>& attributes = {}) {
    const std::string base = n.name + "/" + op_type;
    std::string name = base;
    for (int k = 1; used_.count(name); ++k) name = base + "_" + std::to_string(k);
    used_.insert(name);
    out_.add_node(op_type, inputs, outputs, name, attributes);
  }

  // The graph's outputs, as rows name them (the detect head's maps).
  std::vector<std::pair<std::string, Shape>>& outputs() { return outputs_; }

 private:
  std::string add_floats(const std::string& name, const std::vector<float>& values, std::vector<int64_t> dims, io::onnx::DataType type) {
    if (dims.empty()) dims = {static_cast<int64_t>(values.size())};
    if (type == io::onnx::DataType::float16) {
      std::vector<uint16_t> half(values.size());
      for (size_t i = 0; i < values.size(); ++i) half[i] = float_to_half_bits(values[i]);
      out_.add_initializer(io::onnx::tensor(name, type, dims, half.data()));
    } else {
      out_.add_initializer(io::onnx::tensor(name, io::onnx::DataType::float32, dims, values.data()));
    }
    return name;
  }
  size_t index_of(const Node& n) const { return static_cast<size_t>(&n - nodes_.data()); }
  io::onnx::GraphWriter& out_;
  const std::vector<Node>& nodes_;
  std::vector<std::string> names_;
  const std::vector<Shape>& shapes_;
  bool grid_ = false;
  io::onnx::DataType float_type_;
  std::set<std::string> used_;  // ONNX node names so far
  std::vector<std::pair<std::string, Shape>> outputs_;
};

}  // namespace pdyolo::graph
