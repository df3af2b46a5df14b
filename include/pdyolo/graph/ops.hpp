// The op table: one row per graph op, the one place that says what an op is. Every pass over the
// graph reads the row instead of switching on the op:
//
//   name, attributes   the model file's name, and the attribute struct's default value (whose
//                      `fields` list is read, written and checked: graph/node.hpp)
//   inputs             how many it reads
//   channels           how its output channels follow from its inputs (Graph::channels, validate,
//                      the channel groups of pruning) and which tensor axes index them
//   shape, FLOPs       its output shape from its inputs' (Graph::infer_shapes), its 2 × multiply-adds
//   check              what validate() checks beyond attribute ranges and channel axes
//   quantizer          how the int8 plan quantizes its output (quant/plan.hpp)
//   inference          whether it remains after graph::fuse, so that planned executors run it
//   kernel             the kernel kind that runs it, which a backend declares per dtype
//                      (backend/dispatch.hpp): a planned run checks its backend has them all
//   onnx               the ONNX nodes it becomes (graph/onnx_export.hpp)
//
// What remains per backend — the kernel that runs an op — is a switch over Op with no `default:` in
// each executor, so a new op that one of them lacks is a compile error (README: how to add an op).
#pragma once
#include <climits>
#include <cmath>
#include <iterator>
#include <string>
#include <vector>

#include "pdyolo/backend/backend.hpp"
#include "pdyolo/core/shape.hpp"
#include "pdyolo/graph/node.hpp"
#include "pdyolo/graph/onnx_writer.hpp"
#include "pdyolo/kernels/ref/reorg.hpp"

namespace pdyolo::graph {

// The most channels one node may have (real detectors stay below 4096); validate() and the config
// builder refuse more, so channel sums cannot overflow and files cannot ask for absurd tensors.
inline constexpr int64_t kMaxChannels = int64_t{1} << 16;

// How an op's output channels follow from its inputs' (graph/channels.hpp builds pruning's channel
// groups from it).
enum class ChannelRule {
  source,          // creates the image's channels (input)
  produce,         // creates weight.shape[0] channels (conv)
  passthrough,     // output channel c is input channel c (bn, activation, pool, upsample, implicit)
  coupled,         // passthrough, and channel c of every input is the same channel (add: a residual)
  concat,          // the inputs' channels end to end
  space_to_depth,  // its input's channels four times, once per 2×2 phase (reorg)
  sink,            // reads its inputs, creates nothing (detect)
};

inline const char* channel_rule_name(ChannelRule r) {
  switch (r) {
    case ChannelRule::source: return "source";
    case ChannelRule::produce: return "produce";
    case ChannelRule::passthrough: return "passthrough";
    case ChannelRule::coupled: return "coupled";
    case ChannelRule::concat: return "concat";
    case ChannelRule::space_to_depth: return "space_to_depth";
    case ChannelRule::sink: return "sink";
  }
  return "?";
}

// Tensor `tensor`'s axis `axis` runs over the node's output channels or its (first) input's.
enum class ChannelSide { output, input };
struct ChannelAxis {
  const char* tensor;
  int axis;
  ChannelSide side;
};

// How the int8 plan quantizes an op's output (quant/plan.hpp).
enum class QuantRule {
  image,          // the image: s = 1/255, z = 0
  own,            // a quantizer of its own (conv, activation)
  moves_levels,   // its inputs' quantizer: it moves levels without arithmetic (concat, pool, upsample, reorg)
  shared_inputs,  // its inputs share one quantizer, its output has its own (add: sums levels, requantizes once)
  fused_away,     // graph::fuse removes it before anything is quantized (batch norm, implicit)
  dequantized,    // nothing quantized: its inputs' accumulators are dequantized (detect)
};

inline constexpr int kUnboundedInputs = -1;

struct OpDesc {
  Op op;
  const char* name;
  Attrs (*default_attrs)();  // its attribute struct (NoAttrs: none)
  int min_inputs, max_inputs;  // max kUnboundedInputs: any number
  ChannelRule channel_rule;
  std::vector<ChannelAxis> (*channel_axes)(const Node&);  // every tensor axis of the node that indexes channels
  // Its output shape [N, C, H, W] from its inputs' and its output channel count (the input's is the
  // image's, given by the caller).
  Shape (*shape)(const Node&, const std::vector<Shape>& inputs, int64_t channels);
  double (*flops)(const Node&, const Shape& output);  // 2 × its multiply-adds
  // What validate() checks beyond attribute ranges and channel axes, given its inputs and their
  // channel counts; "" when all is well.
  std::string (*check)(const Node&, const std::vector<const Node*>& inputs, const std::vector<int64_t>& input_channels);
  QuantRule quant;
  bool inference;  // remains in a fused graph (graph::fuse), so planned executors run it
  // The kernel kind that runs it (backend/dispatch.hpp's table): a planned run asks its backend
  // whether it has this kind for its dtype before it starts (graph/planned.hpp).
  OpKind kernel;
  // Its ONNX form: the nodes, initializers and (for the detect head) graph outputs it writes
  // (graph/onnx_export.hpp; opset 12–14).
  void (*onnx)(OnnxNodeWriter&, const Node&);
};

namespace op_rows {

inline std::vector<ChannelAxis> no_axes(const Node&) { return {}; }
inline Shape same_shape(const Node&, const std::vector<Shape>& in, int64_t) { return in.at(0); }
inline Shape no_shape(const Node&, const std::vector<Shape>&, int64_t) { return {}; }
inline double no_flops(const Node&, const Shape&) { return 0.0; }
inline std::string no_check(const Node&, const std::vector<const Node*>&, const std::vector<int64_t>&) { return {}; }
template <class A> Attrs attrs() { return A{}; }

inline int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t padding) { return (in + 2 * padding - kernel) / stride + 1; }

inline std::vector<ChannelAxis> conv_axes(const Node& n) {
  // A grouped conv's weight axis 1 indexes channels within a group only, so it is not listed;
  // channel_groups couples a depthwise conv's input and output instead and marks other grouped
  // convs unprunable.
  std::vector<ChannelAxis> axes{{"weight", 0, ChannelSide::output}};
  if (n.get<ConvAttrs>().groups == 1) axes.push_back({"weight", 1, ChannelSide::input});
  if (n.has_tensor("bias")) axes.push_back({"bias", 0, ChannelSide::output});
  return axes;
}
inline Shape conv_shape(const Node& n, const std::vector<Shape>& in, int64_t channels) {
  const auto& c = n.get<ConvAttrs>();
  return {in[0][0], channels, window_out(in[0][2], c.kernel, c.stride, c.padding), window_out(in[0][3], c.kernel, c.stride, c.padding)};
}
// Each output element of a conv takes IC/groups · KH · KW multiply-adds.
inline double conv_flops(const Node& n, const Shape& out) {
  const Shape& w = n.tensor("weight").shape();
  return 2.0 * static_cast<double>(shape_numel(out)) * static_cast<double>(w[1] * w[2] * w[3]);
}
inline std::string conv_check(const Node& n, const std::vector<const Node*>& inputs, const std::vector<int64_t>& in) {
  if (!n.has_tensor("weight") || n.tensor("weight").dim() != 4) return "needs a weight [OC, IC/groups, KH, KW]";
  const ConvAttrs& c = n.get<ConvAttrs>();
  const Shape& w = n.tensor("weight").shape();
  const std::string oc = std::to_string(w[0]);
  if (c.groups > kMaxChannels || w[0] % c.groups) return "weight has " + oc + " output channels, not a multiple of groups " + std::to_string(c.groups);
  if (w[1] * c.groups != in[0])
    return "weight reads " + std::to_string(w[1] * c.groups) + " input channels, its input '" + inputs[0]->name + "' has " + std::to_string(in[0]);
  if (w[2] != c.kernel || w[3] != c.kernel)
    return "kernel " + std::to_string(c.kernel) + " but the weight is " + std::to_string(w[2]) + "x" + std::to_string(w[3]);
  return {};
}

inline std::vector<ChannelAxis> batch_norm_axes(const Node&) {
  return {{"weight", 0, ChannelSide::input}, {"bias", 0, ChannelSide::input}, {"running_mean", 0, ChannelSide::input},
          {"running_var", 0, ChannelSide::input}};
}
inline std::vector<ChannelAxis> implicit_axes(const Node&) { return {{"implicit", 1, ChannelSide::input}}; }  // [1, C, 1, 1]

inline std::string add_check(const Node&, const std::vector<const Node*>& inputs, const std::vector<int64_t>& in) {
  for (size_t j = 1; j < in.size(); ++j)
    if (in[j] != in[0])
      return "input '" + inputs[j]->name + "' has " + std::to_string(in[j]) + " channels, input '" + inputs[0]->name + "' has " +
             std::to_string(in[0]);
  return {};
}

inline Shape concat_shape(const Node&, const std::vector<Shape>& in, int64_t channels) { return {in[0][0], channels, in[0][2], in[0][3]}; }

inline Shape pool_shape(const Node& n, const std::vector<Shape>& in, int64_t) {
  const auto& p = n.get<PoolAttrs>();
  return {in[0][0], in[0][1], window_out(in[0][2], p.kernel, p.stride, p.padding), window_out(in[0][3], p.kernel, p.stride, p.padding)};
}

inline Shape upsample_shape(const Node& n, const std::vector<Shape>& in, int64_t) {
  const int64_t s = n.get<UpsampleAttrs>().scale;
  return {in[0][0], in[0][1], in[0][2] * s, in[0][3] * s};
}

// reorg: [N, C, H, W] → [N, 4C, H/2, W/2] (H and W even: the kernels refuse odd ones).
inline Shape reorg_shape(const Node&, const std::vector<Shape>& in, int64_t channels) { return {in[0][0], channels, in[0][2] / 2, in[0][3] / 2}; }

inline std::string detect_check(const Node& n, const std::vector<const Node*>& inputs, const std::vector<int64_t>& in) {
  const DetectAttrs& d = n.get<DetectAttrs>();
  const int64_t levels = static_cast<int64_t>(inputs.size());
  for (size_t j = 0; j < in.size(); ++j)
    if (in[j] != d.na * d.outputs_per_anchor())
      return "input '" + inputs[j]->name + "' has " + std::to_string(in[j]) + " channels, na·(nc+5) is " + std::to_string(d.na * d.outputs_per_anchor());
  if (static_cast<int64_t>(d.strides.size()) != levels)
    return std::to_string(levels) + " levels but " + std::to_string(d.strides.size()) + " strides";
  if (!n.has_tensor("anchor_grid") || n.tensor("anchor_grid").numel() != levels * d.na * 2)
    return "needs an anchor_grid of " + std::to_string(levels * d.na * 2) + " numbers [nl, 1, na, 1, 1, 2]";
  return {};
}

// ---- ONNX forms ----------------------------------------------------------------------------------
using io::onnx::Attribute;

inline void onnx_nothing(OnnxNodeWriter&, const Node&) {}  // the input: the graph's input "images"

inline void onnx_conv(OnnxNodeWriter& w, const Node& n) {
  const auto& c = n.get<ConvAttrs>();
  std::vector<std::string> in{w.input(n, 0), w.tensor(n, "weight")};
  if (n.has_tensor("bias")) in.push_back(w.tensor(n, "bias"));
  w.add(n, "Conv", in, {w.output(n)},
        {Attribute::of_ints("dilations", {1, 1}), Attribute::of_int("group", c.groups), Attribute::of_ints("kernel_shape", {c.kernel, c.kernel}),
         Attribute::of_ints("pads", {c.padding, c.padding, c.padding, c.padding}), Attribute::of_ints("strides", {c.stride, c.stride})});
}

inline void onnx_batch_norm(OnnxNodeWriter& w, const Node& n) {
  const auto& b = n.get<BatchNormAttrs>();
  w.add(n, "BatchNormalization",
        {w.input(n, 0), w.tensor(n, "weight"), w.tensor(n, "bias"), w.tensor(n, "running_mean"), w.tensor(n, "running_var")}, {w.output(n)},
        {Attribute::of_float("epsilon", b.eps), Attribute::of_float("momentum", 1.0f - b.momentum)});
}

// SiLU is x · σ(x) (no SiLU op before opset 24).
inline void onnx_activation(OnnxNodeWriter& w, const Node& n) {
  const auto& a = n.get<ActivationAttrs>();
  switch (a.kind) {
    case Activation::silu: {
      const std::string s = w.temp(n, "sigmoid");
      w.add(n, "Sigmoid", {w.input(n, 0)}, {s});
      w.add(n, "Mul", {w.input(n, 0), s}, {w.output(n)});
      return;
    }
    case Activation::leaky_relu: return w.add(n, "LeakyRelu", {w.input(n, 0)}, {w.output(n)}, {Attribute::of_float("alpha", a.slope)});
    case Activation::relu: return w.add(n, "Relu", {w.input(n, 0)}, {w.output(n)});
    case Activation::identity: return w.add(n, "Identity", {w.input(n, 0)}, {w.output(n)});
  }
}

// Summed left to right, as the executors do.
inline void onnx_add(OnnxNodeWriter& w, const Node& n) {
  if (n.inputs.size() == 1) return w.add(n, "Identity", {w.input(n, 0)}, {w.output(n)});
  std::string sum = w.input(n, 0);
  for (size_t j = 1; j < n.inputs.size(); ++j) {
    const std::string out = j + 1 == n.inputs.size() ? w.output(n) : w.temp(n, "sum" + std::to_string(j));
    w.add(n, "Add", {sum, w.input(n, j)}, {out});
    sum = out;
  }
}

inline void onnx_concat(OnnxNodeWriter& w, const Node& n) {
  std::vector<std::string> in;
  for (size_t j = 0; j < n.inputs.size(); ++j) in.push_back(w.input(n, j));
  w.add(n, "Concat", in, {w.output(n)}, {Attribute::of_int("axis", 1)});
}

inline void onnx_max_pool(OnnxNodeWriter& w, const Node& n) {
  const auto& p = n.get<PoolAttrs>();
  w.add(n, "MaxPool", {w.input(n, 0)}, {w.output(n)},
        {Attribute::of_ints("kernel_shape", {p.kernel, p.kernel}), Attribute::of_ints("pads", {p.padding, p.padding, p.padding, p.padding}),
         Attribute::of_ints("strides", {p.stride, p.stride})});
}

// Nearest upsampling as PyTorch exports it: Resize with scales, asymmetric coordinates, floor.
inline void onnx_upsample(OnnxNodeWriter& w, const Node& n) {
  const float s = static_cast<float>(n.get<UpsampleAttrs>().scale);
  // roi: unused in this mode, but a required input before opset 13 (an empty tensor).
  w.add(n, "Resize", {w.input(n, 0), w.floats_f32(n, "roi", {}), w.floats_f32(n, "scales", {1.0f, 1.0f, s, s})}, {w.output(n)},
        {Attribute::of_string("coordinate_transformation_mode", "asymmetric"), Attribute::of_string("mode", "nearest"),
         Attribute::of_string("nearest_mode", "floor")});
}

// Space-to-depth in the reference's phase order: four strided slices, concatenated.
inline void onnx_reorg(OnnxNodeWriter& w, const Node& n) {
  std::vector<std::string> phases;
  const std::string ends = w.int64s(n, "ends", {INT64_MAX, INT64_MAX}), axes = w.int64s(n, "axes", {2, 3}), steps = w.int64s(n, "steps", {2, 2});
  for (int k = 0; k < 4; ++k) {
    const std::string phase = w.temp(n, "phase" + std::to_string(k));
    w.add(n, "Slice", {w.input(n, 0), w.int64s(n, "starts" + std::to_string(k), {kernels::kReorgRow[k], kernels::kReorgColumn[k]}), ends, axes, steps},
          {phase});
    phases.push_back(phase);
  }
  w.add(n, "Concat", phases, {w.output(n)}, {Attribute::of_int("axis", 1)});
}

inline void onnx_implicit_add(OnnxNodeWriter& w, const Node& n) { w.add(n, "Add", {w.input(n, 0), w.tensor(n, "implicit")}, {w.output(n)}); }
inline void onnx_implicit_mul(OnnxNodeWriter& w, const Node& n) { w.add(n, "Mul", {w.input(n, 0), w.tensor(n, "implicit")}, {w.output(n)}); }

// The raw head, as the official export writes it: each level's [N, na·no, H, W] reshaped to
// [N, na, no, H, W] and transposed to [N, na, H, W, no], a graph output named p<log2 stride>. With
// the writer's grid, the boxes decoded as graph::decode_box does, in the same order of operations,
// every level's rows concatenated into one output, "output" [N, Σ na·H·W, no].
inline void onnx_detect(OnnxNodeWriter& w, const Node& n) {
  const auto& d = n.get<DetectAttrs>();
  const int64_t no = d.outputs_per_anchor();
  const Tensor anchors = contiguous_copy(n.tensor("anchor_grid").detach().to(DType::f32));  // [nl, 1, na, 1, 1, 2] pixels
  std::vector<std::string> level_rows;
  int64_t rows = 0;
  const std::string two = w.grid() ? w.floats(n, "two", {2.0f}) : "", half = w.grid() ? w.floats(n, "half", {0.5f}) : "";
  for (size_t l = 0; l < n.inputs.size(); ++l) {
    const Shape& in = w.input_shape(n, l);
    const int64_t h = in[2], wd = in[3];
    const std::string level = "p" + std::to_string(static_cast<int>(std::lround(std::log2(d.strides.at(l)))));
    const std::string shaped = w.temp(n, level + "_reshaped"), maps = w.grid() ? w.temp(n, level) : level;
    w.add(n, "Reshape", {w.input(n, l), w.int64s(n, level + "_shape", {0, d.na, no, h, wd})}, {shaped});  // 0: the batch, as it comes
    w.add(n, "Transpose", {shaped}, {maps}, {Attribute::of_ints("perm", {0, 1, 3, 4, 2})});
    if (!w.grid()) {
      w.outputs().push_back({level, Shape{in[0], d.na, h, wd, no}});
      continue;
    }
    auto t = [&](const std::string& what) { return w.temp(n, level + "_" + what); };
    auto slice = [&](const std::string& what, int64_t begin, int64_t end) {
      w.add(n, "Slice", {t("sigmoid"), w.int64s(n, level + "_" + what + "_start", {begin}), w.int64s(n, level + "_" + what + "_end", {end}),
                         w.int64s(n, level + "_" + what + "_axis", {4})}, {t(what)});
    };
    std::vector<float> grid;  // [1, 1, H, W, 2]: each cell's column and row
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < wd; ++x) grid.push_back(static_cast<float>(x)), grid.push_back(static_cast<float>(y));
    const float* a = anchors.data<float>() + static_cast<int64_t>(l) * d.na * 2;
    w.add(n, "Sigmoid", {maps}, {t("sigmoid")});
    slice("xy", 0, 2), slice("wh", 2, 4), slice("rest", 4, INT64_MAX);
    w.add(n, "Mul", {t("xy"), two}, {t("xy2")});  // (x·2 − 0.5 + col)·stride
    w.add(n, "Sub", {t("xy2"), half}, {t("xy3")});
    w.add(n, "Add", {t("xy3"), w.floats(n, level + "_grid", grid, {1, 1, h, wd, 2})}, {t("xy4")});
    w.add(n, "Mul", {t("xy4"), w.floats(n, level + "_stride", {d.strides[l]})}, {t("xy5")});
    w.add(n, "Mul", {t("wh"), two}, {t("wh2")});  // (w·2)²·anchor
    w.add(n, "Mul", {t("wh2"), t("wh2")}, {t("wh3")});
    w.add(n, "Mul", {t("wh3"), w.floats(n, level + "_anchors", std::vector<float>(a, a + d.na * 2), {1, d.na, 1, 1, 2})}, {t("wh4")});
    w.add(n, "Concat", {t("xy5"), t("wh4"), t("rest")}, {t("boxes")}, {Attribute::of_int("axis", 4)});
    w.add(n, "Reshape", {t("boxes"), w.int64s(n, level + "_rows_shape", {0, -1, no})}, {t("rows")});
    level_rows.push_back(t("rows"));
    rows += d.na * h * wd;
  }
  if (w.grid()) {
    w.add(n, "Concat", level_rows, {"output"}, {Attribute::of_int("axis", 1)});
    w.outputs().push_back({"output", Shape{w.input_shape(n, 0)[0], rows, no}});
  }
}

}  // namespace op_rows

// The rows, in the order of enum Op (checked at compile time below).
inline constexpr OpDesc kOpTable[] = {
    // op             name            attributes                        inputs   channels                   channel axes               shape                      FLOPs                check                  quantizer                  inference   kernel   onnx
    {Op::input,        "input",        op_rows::attrs<InputAttrs>,       0, 0,    ChannelRule::source,       op_rows::no_axes,          op_rows::no_shape,         op_rows::no_flops,   op_rows::no_check,     QuantRule::image,          true, OpKind::copy, op_rows::onnx_nothing},
    {Op::conv,         "conv",         op_rows::attrs<ConvAttrs>,        1, 1,    ChannelRule::produce,      op_rows::conv_axes,        op_rows::conv_shape,       op_rows::conv_flops, op_rows::conv_check,   QuantRule::own,            true, OpKind::conv2d, op_rows::onnx_conv},
    {Op::batch_norm,   "batch_norm",   op_rows::attrs<BatchNormAttrs>,   1, 1,    ChannelRule::passthrough,  op_rows::batch_norm_axes,  op_rows::same_shape,       op_rows::no_flops,   op_rows::no_check,     QuantRule::fused_away,     false, OpKind::batch_norm2d, op_rows::onnx_batch_norm},
    {Op::activation,   "activation",   op_rows::attrs<ActivationAttrs>,  1, 1,    ChannelRule::passthrough,  op_rows::no_axes,          op_rows::same_shape,       op_rows::no_flops,   op_rows::no_check,     QuantRule::own,            true, OpKind::unary, op_rows::onnx_activation},
    {Op::add,          "add",          op_rows::attrs<NoAttrs>,          1, kUnboundedInputs, ChannelRule::coupled, op_rows::no_axes,   op_rows::same_shape,       op_rows::no_flops,   op_rows::add_check,    QuantRule::shared_inputs,  true, OpKind::binary, op_rows::onnx_add},
    {Op::concat,       "concat",       op_rows::attrs<NoAttrs>,          1, kUnboundedInputs, ChannelRule::concat,  op_rows::no_axes,   op_rows::concat_shape,     op_rows::no_flops,   op_rows::no_check,     QuantRule::moves_levels,   true, OpKind::copy, op_rows::onnx_concat},
    {Op::max_pool,     "max_pool",     op_rows::attrs<PoolAttrs>,        1, 1,    ChannelRule::passthrough,  op_rows::no_axes,          op_rows::pool_shape,       op_rows::no_flops,   op_rows::no_check,     QuantRule::moves_levels,   true, OpKind::max_pool2d, op_rows::onnx_max_pool},
    {Op::upsample,     "upsample",     op_rows::attrs<UpsampleAttrs>,    1, 1,    ChannelRule::passthrough,  op_rows::no_axes,          op_rows::upsample_shape,   op_rows::no_flops,   op_rows::no_check,     QuantRule::moves_levels,   true, OpKind::upsample_nearest, op_rows::onnx_upsample},
    {Op::reorg,        "reorg",        op_rows::attrs<NoAttrs>,          1, 1,    ChannelRule::space_to_depth, op_rows::no_axes,        op_rows::reorg_shape,      op_rows::no_flops,   op_rows::no_check,     QuantRule::moves_levels,   true, OpKind::reorg, op_rows::onnx_reorg},
    {Op::implicit_add, "implicit_add", op_rows::attrs<NoAttrs>,          1, 1,    ChannelRule::passthrough,  op_rows::implicit_axes,    op_rows::same_shape,       op_rows::no_flops,   op_rows::no_check,     QuantRule::fused_away,     false, OpKind::binary, op_rows::onnx_implicit_add},
    {Op::implicit_mul, "implicit_mul", op_rows::attrs<NoAttrs>,          1, 1,    ChannelRule::passthrough,  op_rows::implicit_axes,    op_rows::same_shape,       op_rows::no_flops,   op_rows::no_check,     QuantRule::fused_away,     false, OpKind::binary, op_rows::onnx_implicit_mul},
    {Op::detect,       "detect",       op_rows::attrs<DetectAttrs>,      1, kUnboundedInputs, ChannelRule::sink,    op_rows::no_axes,   op_rows::no_shape,         op_rows::no_flops,   op_rows::detect_check, QuantRule::dequantized,    true, OpKind::unary, op_rows::onnx_detect},
};

namespace detail {
constexpr bool op_table_in_enum_order() {
  for (size_t i = 0; i < std::size(kOpTable); ++i)
    if (kOpTable[i].op != kAllOps[i]) return false;
  return std::size(kOpTable) == std::size(kAllOps);
}
}  // namespace detail
static_assert(detail::op_table_in_enum_order(), "kOpTable: one row per Op, in the order of enum Op");

inline const OpDesc& describe(Op op) { return kOpTable[static_cast<size_t>(op)]; }
inline const char* op_name(Op op) { return describe(op).name; }

// Output channels of a node with this rule, given its inputs' counts.
inline int64_t output_channels(const Node& n, const std::vector<int64_t>& in) {
  switch (describe(n.op).channel_rule) {
    case ChannelRule::source: return n.get<InputAttrs>().channels;
    case ChannelRule::produce: return n.tensor("weight").shape().at(0);
    case ChannelRule::passthrough:
    case ChannelRule::coupled: return in.at(0);
    case ChannelRule::concat: {
      int64_t sum = 0;
      for (int64_t c : in) sum += c;
      return sum;
    }
    case ChannelRule::space_to_depth: return 4 * in.at(0);
    case ChannelRule::sink: return 0;
  }
  return 0;
}

}  // namespace pdyolo::graph
