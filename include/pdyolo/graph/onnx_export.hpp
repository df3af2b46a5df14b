// A graph as an ONNX model: the input "images" [N, C, H, W] (N fixed, or the symbol "batch" with
// dynamic_batch), each node as its op-table row's `onnx` form writes it (graph/ops.hpp), the detect
// head's raw maps as outputs p3, p4, p5 … [N, na, H, W, no] (the official export's default layout)
// or, with grid, its decoded boxes as "output" [N, Σ na·H·W, no], and the class names and strides
// in metadata_props. H and W are fixed: the head's reshapes name
// them. Written with io/onnx.hpp's protobuf messages; no ONNX or protobuf library.
#pragma once
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/core/version.hpp"
#include "pdyolo/graph/graph.hpp"
#include "pdyolo/graph/onnx_writer.hpp"
#include "pdyolo/io/onnx.hpp"

namespace pdyolo::graph {

struct OnnxExportOptions {
  int64_t opset = 12;                 // the official export's
  int64_t height = 640, width = 640;  // multiples of the largest stride
  int64_t batch = 1;
  bool dynamic_batch = false;         // axis 0 of the input and outputs is the symbol "batch"
  bool grid = false;                  // decoded boxes in one output, "output" [N, rows, no] (the official --grid)
  bool half = false;                  // the whole graph in float16: input, weights, values, outputs
  std::vector<std::string> class_names;
  std::string producer_version = PDYOLO_VERSION;
};

// The ONNX model's bytes. g may be fused or not (a batch norm becomes BatchNormalization in
// inference form); it must end in a detect node.
inline std::string export_onnx(const Graph& g, const OnnxExportOptions& o) {
  PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == Op::input, "onnx export: the graph has no input node");
  const int detect = g.detect_node();
  PDYOLO_CHECK(detect >= 0, "onnx export: the graph has no detect node");
  const auto& d = g.nodes[static_cast<size_t>(detect)].get<DetectAttrs>();
  const float largest_stride = *std::max_element(d.strides.begin(), d.strides.end());
  const auto stride = static_cast<int64_t>(largest_stride);
  PDYOLO_CHECK(o.height > 0 && o.width > 0 && o.height % stride == 0 && o.width % stride == 0, "onnx export: the image size ", o.height, "x",
               o.width, " is not a multiple of the largest stride ", stride);
  PDYOLO_CHECK(o.batch >= 1, "onnx export: the batch must be at least 1, got ", o.batch);
  PDYOLO_CHECK(o.opset >= 12 && o.opset <= 14, "onnx export: opset ", o.opset, " is not supported (12 to 14; the official export uses 12)");
  std::vector<Shape> shapes = g.infer_shapes(o.height, o.width);
  for (Shape& s : shapes)
    if (!s.empty()) s[0] = o.batch;
  std::vector<std::string> names;
  for (const Node& n : g.nodes) names.push_back(n.op == Op::input ? "images" : n.name);

  io::onnx::GraphWriter out;
  const io::onnx::DataType type = o.half ? io::onnx::DataType::float16 : io::onnx::DataType::float32;
  const io::onnx::Dim batch = o.dynamic_batch ? io::onnx::Dim{0, "batch"} : io::onnx::Dim{o.batch, ""};
  out.add_input(io::onnx::value_info("images", type, {batch, {shapes[0][1], ""}, {o.height, ""}, {o.width, ""}}));
  OnnxNodeWriter writer(out, g.nodes, names, shapes, o.grid, type);
  for (const Node& n : g.nodes) describe(n.op).onnx(writer, n);
  for (const auto& [name, shape] : writer.outputs()) {
    std::vector<io::onnx::Dim> dims{batch};
    for (size_t i = 1; i < shape.size(); ++i) dims.push_back({shape[i], ""});
    out.add_output(io::onnx::value_info(name, type, dims));
  }
  // Names as Ultralytics writes them ("{0: 'person', 1: 'bicycle'}": a Python literal, quotes and
  // backslashes escaped), class<i> for a model without names.
  auto quoted = [](const std::string& name) {
    std::string q = "'";
    for (char c : name) q += c == '\'' || c == '\\' ? std::string("\\") + c : std::string(1, c);
    return q + "'";
  };
  std::string names_meta = "{";
  for (int64_t i = 0; i < d.nc; ++i) {
    const bool named = static_cast<size_t>(i) < o.class_names.size();
    names_meta += (i ? ", " : "") + std::to_string(i) + ": " + quoted(named ? o.class_names[static_cast<size_t>(i)] : "class" + std::to_string(i));
  }
  names_meta += "}";
  return out.model_bytes("pdyolo", o.opset, "pdyolo", o.producer_version, {{"stride", std::to_string(stride)}, {"names", names_meta}});
}

}  // namespace pdyolo::graph
