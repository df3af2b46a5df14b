// `pdyolo info` and `pdyolo forward`: inspect a model config, and run a checkpoint on an input.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/io/npy.hpp"
#include "pdyolo/models/weights.hpp"

namespace pdyolo::cli {

inline std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > 0; i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

inline std::string args_text(const models::LayerSpec& l) {
  std::string s = "[";
  for (size_t i = 0; i < l.args.size(); ++i) {
    const io::Value& v = l.args[i];
    s += i ? ", " : "";
    if (v.is(io::Value::Kind::string)) s += v.str;
    else if (v.is(io::Value::Kind::list)) s += "[…]";
    else if (v.is(io::Value::Kind::none)) s += "None";
    else s += io::to_json(v);
  }
  return s + "]";
}

inline std::string from_text(const models::LayerSpec& l) {
  if (l.from_raw.size() == 1) return std::to_string(l.from_raw[0]);
  std::string s = "[";
  for (size_t i = 0; i < l.from_raw.size(); ++i) s += (i ? "," : "") + std::to_string(l.from_raw[i]);
  return s + "]";
}

// pdyolo info --cfg FILE [--nc N] [--img-size S] [--verbose] [--json]
inline int run_info(int argc, char** argv) {
  const Args args(argc, argv, 2, {"--cfg", "--nc", "--img-size"}, {"--json", "--verbose"});
  const std::string path = args.required("--cfg");
  std::optional<int64_t> nc;
  if (args.has("--nc")) nc = args.integer("--nc", 80);
  const int64_t size = args.integer("--img-size", 640);
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const models::YoloModel model = models::build_yolo(models::load_model_config(path, nc));
  const graph::Graph& g = model.graph;
  const double gflops = g.conv_flops(size) / 1e9;
  const int64_t layers = static_cast<int64_t>(model.config.layers.size());

  if (args.has("--verbose")) {
    const std::vector<Shape> shapes = g.infer_shapes(size, size);
    std::vector<int64_t> params(layers, 0);
    std::vector<double> flops(layers, 0.0);
    for (size_t i = 0; i < g.nodes.size(); ++i) {
      const graph::Node& n = g.nodes[i];
      if (n.layer < 0) continue;
      for (const auto& [local, t] : n.tensors)
        if (t.requires_grad()) params[n.layer] += t.numel();
      flops[n.layer] += g.node_flops(i, shapes);
    }
    std::printf("%4s %14s %3s %11s %8s  %-12s %-40s %s\n", "", "from", "n", "params", "GFLOPs", "module", "arguments", "output");
    for (const models::LayerSpec& l : model.config.layers) {
      const Shape& out = shapes[g.layer_output[l.index]];
      const std::string shape = out.empty() ? "detections" : std::to_string(out[1]) + "x" + std::to_string(out[2]) + "x" + std::to_string(out[3]);
      std::printf("%4d %14s %3d %11s %8.3f  %-12s %-40s %s\n", l.index, from_text(l).c_str(), l.number,
                  with_commas(params[l.index]).c_str(), flops[l.index] / 1e9, l.module.c_str(), args_text(l).c_str(), shape.c_str());
    }
  }
  std::printf("%s: %lld layers, %s parameters, %.2f GFLOPs at %lldx%lld (nc=%lld)\n", path.c_str(),
              static_cast<long long>(layers), with_commas(g.parameter_count()).c_str(), gflops,
              static_cast<long long>(size), static_cast<long long>(size), static_cast<long long>(model.config.nc));
  if (args.has("--json"))
    std::printf("{\"layers\":%lld,\"params\":%lld,\"gflops\":%.4f}\n", static_cast<long long>(layers),
                static_cast<long long>(g.parameter_count()), gflops);
  return 0;
}

// pdyolo forward --weights W.pt|W.safetensors [--cfg FILE] --input X.npy --out DIR [--fuse]
inline int run_forward(int argc, char** argv) {
  const Args args(argc, argv, 2, {"--weights", "--cfg", "--input", "--out", "--nc"}, {"--fuse"});
  models::LoadOptions options;
  if (args.has("--cfg")) options.cfg = args.str("--cfg");
  if (args.has("--nc")) options.nc = args.integer("--nc", 80);
  models::YoloModel model = models::load_model(args.required("--weights"), options);
  const std::string input_path = args.required("--input"), out_dir = args.required("--out");
  Tensor input = io::load_npy(input_path);
  PDYOLO_CHECK(input.dim() == 4 && input.shape()[1] == model.config.in_channels, input_path, ": expected an image batch [N, ",
               model.config.in_channels, ", H, W], got ", shape_str(input.shape()));
  input = input.to(DType::f32);
  if (args.has("--fuse")) {
    const graph::FuseReport r = graph::fuse(model.graph);
    std::printf("fused %d conv+bn, %d RepConv, %d implicit pairs; chained %d SPP pools\n", r.batch_norms, r.repconvs, r.implicits,
                r.pools);
  }
  model.graph.eval();
  NoGradGuard no_grad;
  const graph::DetectOutput out = model.graph.forward(input);
  std::filesystem::create_directories(out_dir);
  for (size_t level = 0; level < out.raw.size(); ++level)
    io::save_npy(out_dir + "/raw_p" + std::to_string(level + 3) + ".npy", out.raw[level]);
  io::save_npy(out_dir + "/decoded.npy", out.decoded);
  std::printf("wrote %zu raw maps and decoded %s to %s\n", out.raw.size(), shape_str(out.decoded.shape()).c_str(), out_dir.c_str());
  return 0;
}

}  // namespace pdyolo::cli
