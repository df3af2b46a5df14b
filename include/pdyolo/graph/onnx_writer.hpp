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
  OnnxNodeWriter(io::onnx::GraphWriter& out, const std::vector<Node>& nodes, std::vector<std::string> value_names, const std::vector<Shape>& shapes,
                 bool grid = false)
      : out_(out), nodes_(nodes), names_(std::move(value_names)), shapes_(shapes), grid_(grid) {}

  bool grid() const { return grid_; }

  // The ONNX name of input j of n, and of n's output.
  const std::string& input(const Node& n, size_t j) const { return names_.at(static_cast<size_t>(n.inputs.at(j))); }
  const std::string& output(const Node& n) const { return names_.at(index_of(n)); }
  // n's output shape [N, C, H, W] at the exported size.
  const Shape& shape(const Node& n) const { return shapes_.at(index_of(n)); }
  const Shape& input_shape(const Node& n, size_t j) const { return shapes_.at(static_cast<size_t>(n.inputs.at(j))); }

  // n's tensor `local` as an f32 initializer named like the checkpoint's ("model.0.conv.weight"),
  // reshaped to `dims` when given.
  std::string tensor(const Node& n, const std::string& local, const std::vector<int64_t>& dims = {}) {
    const Tensor t = contiguous_copy(n.tensor(local).detach().to(DType::f32));
    std::vector<int64_t> shape = dims.empty() ? std::vector<int64_t>(t.shape().begin(), t.shape().end()) : dims;
    const std::string name = n.name + "." + local;
    out_.add_initializer(io::onnx::tensor(name, io::onnx::DataType::float32, shape, t.data<float>()));
    return name;
  }
  // A constant initializer named after n.
  std::string int64s(const Node& n, const std::string& what, const std::vector<int64_t>& values) {
    const std::string name = n.name + "/" + what;
    out_.add_initializer(io::onnx::tensor(name, io::onnx::DataType::int64, {static_cast<int64_t>(values.size())}, values.data()));
    return name;
  }
  std::string floats(const Node& n, const std::string& what, const std::vector<float>& values, std::vector<int64_t> dims = {}) {
    const std::string name = n.name + "/" + what;
    if (dims.empty()) dims = {static_cast<int64_t>(values.size())};
    out_.add_initializer(io::onnx::tensor(name, io::onnx::DataType::float32, dims, values.data()));
    return name;
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
  size_t index_of(const Node& n) const { return static_cast<size_t>(&n - nodes_.data()); }
  io::onnx::GraphWriter& out_;
  const std::vector<Node>& nodes_;
  std::vector<std::string> names_;
  const std::vector<Shape>& shapes_;
  bool grid_ = false;
  std::set<std::string> used_;  // ONNX node names so far
  std::vector<std::pair<std::string, Shape>> outputs_;
};

}  // namespace pdyolo::graph
