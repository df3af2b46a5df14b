// `pdyolo info` and `pdyolo forward`: inspect a model config, and run a checkpoint on an input.
#pragma once
#include <cstdio>
#include <filesystem>
#include <iostream>

#include "cli_args.hpp"
#include "cli_load.hpp"
#include "pdyolo/graph/channels.hpp"
#include "pdyolo/graph/executor.hpp"
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

// Per config row (or, for a model no config describes, per graph layer): parameters and GFLOPs.
inline void print_layers(const models::YoloModel& model, int64_t size) {
  const graph::Graph& g = model.graph;
  const std::vector<Shape> shapes = g.infer_shapes(size, size);
  const size_t layers = g.layer_output.size();
  std::vector<int64_t> params(layers, 0);
  std::vector<double> flops(layers, 0.0);
  std::vector<std::string> ops(layers);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const graph::Node& n = g.nodes[i];
    if (n.layer < 0 || n.layer >= static_cast<int>(layers)) continue;
    for (const auto& [local, t] : n.tensors)
      if (t.requires_grad()) params[n.layer] += t.numel();
    flops[n.layer] += g.node_flops(i, shapes);
    ops[n.layer] += (ops[n.layer].empty() ? "" : "+") + std::string(graph::op_name(n.op));
  }
  auto output = [&](size_t layer) {
    const Shape& out = shapes[g.layer_output[layer]];
    return out.empty() ? std::string("detections") : std::to_string(out[1]) + "x" + std::to_string(out[2]) + "x" + std::to_string(out[3]);
  };
  const bool from_config = model.config && model.config->layers.size() == layers;
  std::printf("%4s %14s %3s %11s %8s  %-12s %-40s %s\n", "", "from", "n", "params", "GFLOPs", "module", from_config ? "arguments" : "ops",
              "output");
  for (size_t i = 0; i < layers; ++i) {
    if (from_config) {
      const models::LayerSpec& l = model.config->layers[i];
      std::printf("%4d %14s %3d %11s %8.3f  %-12s %-40s %s\n", l.index, from_text(l).c_str(), l.number, with_commas(params[i]).c_str(),
                  flops[i] / 1e9, l.module.c_str(), args_text(l).c_str(), output(i).c_str());
    } else {
      std::printf("%4zu %14s %3s %11s %8.3f  %-12s %-40s %s\n", i, "", "", with_commas(params[i]).c_str(), flops[i] / 1e9, "",
                  ops[i].c_str(), output(i).c_str());
    }
  }
}

inline const CommandSpec& info_spec() {
  static const CommandSpec spec{"info",
                                "layers, parameters, GFLOPs and channel groups of a model (any model file) or a config",
                                {weights_flag(), cfg_flag("a model config (YAML), when no --weights"), nc_flag(), img_size_flag(),
                                 {"--verbose", "", "", "a table of the layers"},
                                 {"--groups", "", "", "the coupled channel groups structured pruning removes together"},
                                 {"--json", "", "", "one JSON line with layers, params and gflops"}}};
  return spec;
}

inline int run_info(const Args& args) {
  const int64_t size = args.integer("--img-size");
  PDYOLO_CHECK(size > 0 && size % 32 == 0, "--img-size must be a positive multiple of 32, got ", size);
  const LoadedModel loaded = model_from_args(args, std::nullopt, 0, /*int8_ok=*/true);
  const models::YoloModel& model = loaded.model;
  const graph::Graph& g = model.graph;
  if (loaded.int8) {
    const std::vector<bool>& in_float = loaded.int8->float_convs;
    std::printf("int8 model file: %d quantizers, %lld convs kept in float, the detect head dequantized (the graph below is fused)\n",
                loaded.int8->groups, static_cast<long long>(std::count(in_float.begin(), in_float.end(), true)));
  }
  const double gflops = g.conv_flops(size) / 1e9;
  const int64_t layers = static_cast<int64_t>(g.layer_output.size());
  if (args.has("--verbose")) print_layers(model, size);
  if (args.has("--groups")) std::printf("channel groups (what structured pruning removes together):\n%s",
                                        graph::channel_groups(g).describe(g).c_str());
  const std::string name = args.has("--weights") ? args.str("--weights") : args.str("--cfg");
  std::printf("%s: %lld layers, %s parameters, %.2f GFLOPs at %lldx%lld (nc=%lld)\n", name.c_str(), static_cast<long long>(layers),
              with_commas(g.parameter_count()).c_str(), gflops, static_cast<long long>(size), static_cast<long long>(size),
              static_cast<long long>(model.nc()));
  if (args.has("--json"))
    std::printf("{\"layers\":%lld,\"params\":%lld,\"gflops\":%.4f}\n", static_cast<long long>(layers),
                static_cast<long long>(g.parameter_count()), gflops);
  return 0;
}

inline const CommandSpec& convert_spec() {
  static const CommandSpec spec{"convert",
                                "write any model as a self-describing .safetensors (graph, names and config in its metadata)",
                                {weights_flag(), cfg_flag(), nc_flag(), {"--seed", "S", "0", "seed of the random weights (with --cfg alone)"},
                                 {"--fuse", "", "", "fold batch norms, RepConv and implicit layers first"},
                                 {"--out", "OUT.safetensors", "", "the file to write"}}};
  return spec;
}

inline int run_convert(const Args& args) {
  const std::string out = args.required("--out");
  PDYOLO_CHECK(models::detail::ends_with(out, ".safetensors"), "--out must name a .safetensors file, got '", out, "'");
  LoadedModel loaded = model_from_args(args, std::nullopt, static_cast<uint64_t>(args.integer("--seed")));
  models::YoloModel& model = loaded.model;
  const std::string& source = loaded.source;
  if (args.has("--fuse")) {
    const graph::FuseReport r = graph::fuse(model.graph);
    std::printf("fused %d conv+bn, %d RepConv, %d implicit pairs; chained %d SPP pools\n", r.batch_norms, r.repconvs, r.implicits, r.pools);
  }
  if (const auto folder = std::filesystem::path(out).parent_path(); !folder.empty()) std::filesystem::create_directories(folder);
  models::save_model(out, model);
  std::printf("%s -> %s: %zu nodes, %s parameters, nc=%lld\n", source.c_str(), out.c_str(), model.graph.nodes.size(),
              with_commas(model.graph.parameter_count()).c_str(), static_cast<long long>(model.nc()));
  return 0;
}

inline const CommandSpec& forward_spec() {
  static const CommandSpec spec{"forward",
                                "run a model on an input .npy; write the raw maps and the decoded boxes",
                                {weights_flag(), cfg_flag("a config for a plain state dict"), nc_flag(),
                                 {"--input", "X.npy", "", "images [N, 3, H, W], float"},
                                 {"--out", "DIR", "", "where raw_p3.npy … and decoded.npy go"},
                                 {"--fuse", "", "", "fuse the model and run the planned executor (else the autograd forward)"},
                                 {"--simulate", "", "", "int8 model files: the fake-quant float simulation instead of the integer runtime"},
                                 {"--reference", "", "", "int8 model files: the integer runtime's scalar reference convs instead of the int8 GEMM"}}};
  return spec;
}

inline int write_forward_outputs(const graph::DetectOutput& out, const std::string& out_dir, const char* how) {
  std::filesystem::create_directories(out_dir);
  for (size_t level = 0; level < out.raw.size(); ++level)
    io::save_npy(out_dir + "/raw_p" + std::to_string(level + 3) + ".npy", out.raw[level]);
  io::save_npy(out_dir + "/decoded.npy", out.decoded);
  std::printf("wrote %zu raw maps and decoded %s to %s (%s)\n", out.raw.size(), shape_str(out.decoded.shape()).c_str(), out_dir.c_str(), how);
  return 0;
}

inline int run_forward(const Args& args) {
  args.required("--weights");
  const LoadedModel loaded = model_from_args(args, std::nullopt, 0, /*int8_ok=*/true);
  models::YoloModel model = loaded.model;
  PDYOLO_CHECK((!args.has("--simulate") && !args.has("--reference")) || loaded.int8, "--simulate and --reference are for int8 model files (pdyolo quantize's)");
  const std::string input_path = args.required("--input"), out_dir = args.required("--out");
  Tensor input = io::load_npy(input_path);
  PDYOLO_CHECK(input.dim() == 4 && input.shape()[1] == model.in_channels(), input_path, ": expected an image batch [N, ",
               model.in_channels(), ", H, W], got ", shape_str(input.shape()));
  input = input.to(DType::f32);
  if (loaded.int8) {  // the integer runtime, or the fake-quant simulation it is tested against
    NoGradGuard no_grad;
    graph::DetectOutput out;
    if (args.has("--simulate")) {
      const quant::Simulation sim = quant::simulate(model.graph, *loaded.int8);
      graph::RunOptions run;
      run.taps = &sim.taps;
      out = graph::forward(sim.graph, input, run);
    } else {
      const bool reference = args.has("--reference");
      out = quant::IntegerModel(model.graph, *loaded.int8, reference ? Backend::ref : Backend::cpu).run(input);
    }
    const std::string runtime = args.has("--simulate") ? "fake-quant simulation" : args.has("--reference") ? "integer runtime, scalar reference" : int8_runtime_name();
    return write_forward_outputs(out, out_dir, runtime.c_str());
  }
  if (args.has("--fuse")) {
    const graph::FuseReport r = graph::fuse(model.graph);
    std::printf("fused %d conv+bn, %d RepConv, %d implicit pairs; chained %d SPP pools\n", r.batch_norms, r.repconvs, r.implicits,
                r.pools);
  }
  model.graph.eval();
  NoGradGuard no_grad;
  // Fused: the planned executor a deployment runs; unfused: the autograd forward of training.
  const graph::DetectOutput out = args.has("--fuse") ? graph::Executor(model.graph).run(input, /*raw*/ true)
                                                     : graph::forward(model.graph, input);
  return write_forward_outputs(out, out_dir, args.has("--fuse") ? "planned executor" : "autograd forward");
}

}  // namespace pdyolo::cli
