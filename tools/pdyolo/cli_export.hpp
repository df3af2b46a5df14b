// pdyolo export: a model as an ONNX file (graph/onnx_export.hpp).
#pragma once
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/onnx_export.hpp"

namespace pdyolo::cli {

inline const CommandSpec& export_spec() {
  static const CommandSpec spec{
      "export",
      "write a float model as ONNX: fused, input images [N, 3, S, S], the raw maps p3, p4, p5 [N, na, H, W, no] or, with --grid, the boxes",
      {weights_flag(), cfg_flag(), nc_flag(), {"--seed", "S", "0", "seed of the random weights (with --cfg alone)"},
       {"--format", "onnx", "onnx", "the file format"}, img_size_flag(), {"--batch-size", "B", "1", "the input's batch (fixed)"},
       {"--dynamic-batch", "", "", "axis 0 of the input and outputs is the symbol 'batch'"},
       {"--grid", "", "", "decode the boxes into one output, 'output' [N, rows, no] (σ, xywh in pixels), as the official --grid"},
       {"--half", "", "", "float16 throughout: input, weights, values and outputs"}, {"--opset", "N", "12", "ONNX opset (12 to 14)"}, {"--out", "MODEL.onnx", "", "the file to write"}}};
  return spec;
}

inline int run_export(const Args& args) {
  const std::string out = args.required("--out");
  PDYOLO_CHECK(args.str("--format") == "onnx", "--format: only onnx is written, got '", args.str("--format"), "'");
  LoadedModel loaded = model_from_args(args, std::nullopt, static_cast<uint64_t>(args.integer("--seed")));
  models::YoloModel& model = loaded.model;
  graph::fuse(model.graph);
  model.graph.eval();
  graph::OnnxExportOptions o;
  o.height = o.width = args.integer("--img-size");
  o.batch = args.integer("--batch-size");
  o.dynamic_batch = args.has("--dynamic-batch");
  o.grid = args.has("--grid");
  o.half = args.has("--half");
  o.opset = args.integer("--opset");
  o.class_names = model.names;
  const std::string bytes = graph::export_onnx(model.graph, o);
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  std::ofstream file(out, std::ios::binary);
  file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  file.close();
  PDYOLO_CHECK(file.good(), out, ": could not write the ONNX file");
  std::printf("%s -> %s: ONNX opset %lld%s, %.2f MB, input images [%s, %lld, %lld, %lld]\n", loaded.source.c_str(), out.c_str(),
              static_cast<long long>(o.opset), o.half ? " float16" : "", static_cast<double>(bytes.size()) / 1e6, o.dynamic_batch ? "batch" : std::to_string(o.batch).c_str(),
              static_cast<long long>(model.graph.channels(0)), static_cast<long long>(o.height), static_cast<long long>(o.width));
  return 0;
}

}  // namespace pdyolo::cli
