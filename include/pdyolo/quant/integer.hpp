// The scalar integer reference runtime: the specification the fast int8 kernels are tested against.
// Between the image's 8-bit pixels and the detect head's dequantized maps there is only integer
// arithmetic, exactly as kernels/int8_scheme.hpp states it:
//
//   conv        acc = bias_q + Σ (q_x − z_x) · q_w in int32 (zero padding contributes 0); then the
//               activation's table applied to requantize(acc) at the conv's own (s, z), or — for an
//               activation-free conv — requantize(acc) at its output's (s, z). Detect's convs
//               dequantize: acc · s_x · s_w (float raw maps).
//   max-pool, upsample, reorg, concat   move levels: their (s, z) are their inputs' (plan.hpp).
//   add         acc = Σ (q_k − z_x) over its inputs (which share one (s_x, z_x)), then requantize(acc)
//               by s_x / s_out to its own (s, z).
//   a conv kept in float (mixed precision)   dequantizes its input levels, convolves in float with
//               its float weights, applies its activation in float and quantizes the result at the
//               same (s, z) an integer conv would (a float head conv returns the float maps).
//
// Levels are held in f32 tensors (integers 0…255, exact in float) so that max-pool, upsample, reorg
// and concat reuse the float ops, which are exact on them; each conv runs as the scalar loop that
// states the arithmetic. This header is the specification alone: it includes no fast kernel. The
// planned int8 executor (int8_executor.hpp) computes the same integers with the int8 GEMM kernels,
// and quant/runtime.hpp's IntegerModel runs either.
#pragma once
#include <algorithm>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/graph/detect.hpp"
#include "pdyolo/ops/conv.hpp"
#include "pdyolo/ops/pool.hpp"
#include "pdyolo/ops/shape.hpp"
#include "pdyolo/quant/lut.hpp"
#include "pdyolo/quant/plan.hpp"

namespace pdyolo::quant {

// One conv in integer form.
struct IntegerConv {
  int64_t out_channels = 0, in_per_group = 0, kernel = 1, stride = 1, padding = 0, groups = 1;
  std::vector<int8_t> weight;         // [out, in / groups, k, k]
  std::vector<int32_t> bias;          // [out] at s_x · s_w
  int32_t input_zero = 0;
  // Requantization to the conv's output (s, z), then the activation's table (identity: none)...
  std::vector<Multiplier> multipliers;  // [out]
  int32_t output_zero = 0;
  int activation_node = -1;             // the activation applied through `table` (−1: none)
  ActivationTable table{};
  // ...or, for the detect head, dequantization: acc · dequant_scale[c].
  bool dequantize = false;
  std::vector<float> dequant_scale;     // [out]
  bool in_float = false;                // kept in float: none of the above, the graph's float tensors
};

// The integer form of conv node i of g (fused) under plan: int8 weights, int32 bias, requantization
// or dequantization, the activation's table (what a model file stores).
inline IntegerConv make_integer_conv(const graph::Graph& g, const QuantPlan& plan, int i) {
  const graph::Node& node = g.nodes[static_cast<size_t>(i)];
  const auto& attrs = node.get<graph::ConvAttrs>();
  const Tensor w = contiguous_copy(node.tensor("weight"));
  IntegerConv c;
  c.out_channels = w.shape()[0], c.in_per_group = w.shape()[1], c.kernel = w.shape()[2];
  c.stride = attrs.stride, c.padding = attrs.padding, c.groups = attrs.groups;
  c.activation_node = fused_activation(g, i);
  if (plan.in_float(i)) {
    c.in_float = true;
    return c;
  }
  const QParams in = plan.of(node.inputs[0]);
  c.input_zero = in.zero_point;
  const std::vector<float>& scales = plan.weight_scales[static_cast<size_t>(i)];
  const int64_t per_channel = w.numel() / c.out_channels;
  const std::vector<float> bias = node.has_tensor("bias") ? node.tensor("bias").to_vector() : std::vector<float>(scales.size(), 0.0f);
  const bool loaded_bias = static_cast<int>(plan.biases.size()) > i && !plan.biases[static_cast<size_t>(i)].empty();
  for (int64_t o = 0; o < c.out_channels; ++o) {
    for (int64_t k = 0; k < per_channel; ++k)
      c.weight.push_back(static_cast<int8_t>(quantize_weight(w.data<float>()[o * per_channel + k], scales[static_cast<size_t>(o)])));
    c.bias.push_back(loaded_bias ? plan.biases[static_cast<size_t>(i)].at(static_cast<size_t>(o))
                                 : quantize_bias(bias[static_cast<size_t>(o)], in.scale, scales[static_cast<size_t>(o)]));
  }
  if (!plan.quantized(i)) {  // a detect-head conv
    c.activation_node = -1;
    c.dequantize = true;
    for (float s : scales) c.dequant_scale.push_back(static_cast<float>(static_cast<double>(in.scale) * s));
    return c;
  }
  const QParams out = plan.of(i);
  c.output_zero = out.zero_point;
  for (float s : scales) c.multipliers.push_back(make_multiplier(static_cast<double>(in.scale) * s / out.scale));
  if (c.activation_node >= 0) {
    const auto& a = g.nodes[static_cast<size_t>(c.activation_node)].get<graph::ActivationAttrs>();
    c.table = activation_table({a.kind, a.slope}, out, plan.of(c.activation_node));
  }
  return c;
}


// A conv kept in float: x [N, C, H, W] levels → its (activation's) output quantized to levels, or
// float raw maps for a head conv.
inline Tensor run_float_conv(const graph::Graph& g, const QuantPlan& plan, int i, const Tensor& x_levels) {
  const graph::Node& node = g.nodes[static_cast<size_t>(i)];
  const auto& attrs = node.get<graph::ConvAttrs>();
  const QParams in = plan.of(node.inputs[0]);
  NoGradGuard no_grad;
  Tensor y = conv2d((x_levels - static_cast<float>(in.zero_point)) * in.scale, node.tensor("weight"),
                    node.has_tensor("bias") ? node.tensor("bias") : Tensor(),
                    Conv2dParams().stride(attrs.stride).padding(attrs.padding).with_groups(attrs.groups));
  const int act = fused_activation(g, i);
  if (act >= 0) {
    const auto& a = g.nodes[static_cast<size_t>(act)].get<graph::ActivationAttrs>();
    y = activation(y, {a.kind, a.slope});
  }
  if (!plan.quantized(i)) return y;
  const QParams out = plan.of(act >= 0 ? act : i);
  y = contiguous_copy(y);
  for (int64_t k = 0; k < y.numel(); ++k) y.data<float>()[k] = static_cast<float>(quantize_activation(y.data<float>()[k], out));
  return y;
}


// The detect head's float maps [N, C, H, W] (one per level) decoded into boxes [N, Σ na·H·W, no]
// (into *last when graph::reuse_or_allocate may reuse it).
inline Tensor decode_head_maps(const graph::Node& detect, const std::vector<Tensor>& maps, int64_t n, Tensor* last = nullptr) {
  const Tensor anchor_grid = contiguous_copy(detect.tensor("anchor_grid").to(DType::f32));
  std::vector<std::pair<int64_t, int64_t>> sizes;
  int64_t rows = 0;
  const auto& d = detect.get<graph::DetectAttrs>();
  for (const Tensor& level : maps) {
    sizes.emplace_back(level.shape()[2], level.shape()[3]);
    rows += d.na * level.shape()[2] * level.shape()[3];
  }
  Tensor decoded = last ? graph::reuse_or_allocate(*last, {n, rows, d.outputs_per_anchor()}) : Tensor::empty({n, rows, d.outputs_per_anchor()});
  graph::decode_detections(
      detect, anchor_grid, sizes, n, [&](size_t level, int64_t i) { return maps[level].data<float>() + i * maps[level].numel() / n; },
      decoded.data<float>());
  return decoded;
}

// The scalar reference runtime over a fused graph, its plan and its integer convs (make_integer_conv
// per conv node, empty elsewhere); all three must outlive it.
class IntegerReference {
 public:
  IntegerReference(const graph::Graph& g, const QuantPlan& plan, const std::vector<IntegerConv>& convs) : graph_(g), plan_(plan), convs_(convs) {}

  // images [N, C, H, W] in [0, 1] (8-bit images: k/255) → the detect head's float raw maps and
  // (with decode) decoded boxes and, in `levels`, every node's output levels (when given; the nodes
  // of has_output_levels in plan.hpp).
  graph::DetectOutput run(const Tensor& images, std::vector<Tensor>* levels = nullptr, bool decode = true) const {
    const int n = static_cast<int>(graph_.nodes.size());
    std::vector<Tensor> values(static_cast<size_t>(n));
    values[0] = image_levels(images);
    graph::DetectOutput out;
    for (int i = 1; i < n; ++i) {
      const graph::Node& node = graph_.nodes[static_cast<size_t>(i)];
      std::vector<Tensor> in;
      for (int j : node.inputs) in.push_back(values[static_cast<size_t>(j)]);
      switch (node.op) {
        case graph::Op::conv:
          values[static_cast<size_t>(i)] = convs_[static_cast<size_t>(i)].in_float ? run_float_conv(graph_, plan_, i, in[0]) : run_conv(convs_[static_cast<size_t>(i)], in[0]);
          break;
        case graph::Op::activation:  // applied by its conv (the table); here only its value is passed on
          PDYOLO_CHECK(in[0].defined() && convs_[static_cast<size_t>(node.inputs[0])].activation_node == i, "quant: activation '", node.name,
                       "' does not follow a conv it alone reads");
          values[static_cast<size_t>(i)] = in[0];
          break;
        case graph::Op::concat: values[static_cast<size_t>(i)] = concat(in, 1); break;
        case graph::Op::add: values[static_cast<size_t>(i)] = run_add(i, in); break;
        case graph::Op::max_pool: {
          const auto& p = node.get<graph::PoolAttrs>();
          values[static_cast<size_t>(i)] = max_pool2d(in[0], {p.kernel, p.stride, p.padding});
          break;
        }
        case graph::Op::upsample: values[static_cast<size_t>(i)] = upsample_nearest(in[0], node.get<graph::UpsampleAttrs>().scale); break;
        case graph::Op::reorg: values[static_cast<size_t>(i)] = reorg(in[0]); break;
        case graph::Op::detect: {
          out.raw = graph::detect_raw_maps(node.get<graph::DetectAttrs>(), in);
          if (decode) out.decoded = decode_head_maps(node, in, images.shape()[0]);
          break;
        }
        case graph::Op::input:
        case graph::Op::batch_norm:
        case graph::Op::implicit_add:
        case graph::Op::implicit_mul: throw_error("quant: node '", node.name, "' (", graph::op_name(node.op), ") has no integer form");
      }
    }
    if (levels) {
      levels->assign(static_cast<size_t>(n), Tensor());
      for (int i = 0; i < n; ++i)
        if (has_output_levels(graph_, plan_, i)) (*levels)[static_cast<size_t>(i)] = values[static_cast<size_t>(i)];
    }
    return out;
  }

 private:
  // A residual add of levels at one (s_x, z_x), requantized to the add's own (s, z).
  Tensor run_add(int i, const std::vector<Tensor>& in_levels) const {
    const graph::Node& node = graph_.nodes[static_cast<size_t>(i)];
    const QParams in = plan_.of(node.inputs[0]), out = plan_.of(i);
    for (int j : node.inputs)
      PDYOLO_CHECK(plan_.group_of[static_cast<size_t>(j)] == plan_.group_of[static_cast<size_t>(node.inputs[0])], "quant: the inputs of add '",
                   node.name, "' do not share a quantizer");
    const Multiplier m = make_multiplier(static_cast<double>(in.scale) / out.scale);
    std::vector<Tensor> inputs;
    for (const Tensor& t : in_levels) inputs.push_back(contiguous_copy(t));
    Tensor y = Tensor::empty(inputs[0].shape());
    for (int64_t k = 0; k < y.numel(); ++k) {
      int32_t acc = 0;
      for (const Tensor& t : inputs) acc += static_cast<int32_t>(t.data<float>()[k]) - in.zero_point;
      y.data<float>()[k] = requantize_to_u8(acc, m, out.zero_point);
    }
    return y;
  }

  // Pixels as levels: q = round(x · 255), the image's (s, z) = (1/255, 0).
  static Tensor image_levels(const Tensor& images) {
    const Tensor x = contiguous_copy(images);
    Tensor q = Tensor::empty(x.shape());
    for (int64_t i = 0; i < x.numel(); ++i)
      q.data<float>()[i] = static_cast<float>(std::clamp<int64_t>(round_half_even(x.data<float>()[i] * 255.0f), 0, 255));
    return q;
  }

  // x [N, C, H, W] levels → levels (or, for the head, dequantized floats), integer arithmetic only.
  static Tensor run_conv(const IntegerConv& c, const Tensor& x_levels) {
    const Shape& s = x_levels.shape();
    const int64_t n = s[0], h = s[2], w = s[3];
    const int64_t oh = (h + 2 * c.padding - c.kernel) / c.stride + 1, ow = (w + 2 * c.padding - c.kernel) / c.stride + 1;
    const int64_t out_per_group = c.out_channels / c.groups;
    Tensor y = Tensor::empty({n, c.out_channels, oh, ow});
    const float* x = x_levels.data<float>();
    float* out = y.data<float>();
    parallel_tasks(n * c.out_channels, [&](int64_t task) {  // one output plane per task: the result does not depend on threads
        const int64_t b = task / c.out_channels, o = task % c.out_channels;
        const int64_t first_in = (o / out_per_group) * c.in_per_group;
        const int8_t* wo = c.weight.data() + o * c.in_per_group * c.kernel * c.kernel;
        for (int64_t oy = 0; oy < oh; ++oy)
          for (int64_t ox = 0; ox < ow; ++ox) {
            int64_t acc = c.bias[static_cast<size_t>(o)];
            for (int64_t ci = 0; ci < c.in_per_group; ++ci)
              for (int64_t ky = 0; ky < c.kernel; ++ky) {
                const int64_t iy = oy * c.stride - c.padding + ky;
                if (iy < 0 || iy >= h) continue;
                for (int64_t kx = 0; kx < c.kernel; ++kx) {
                  const int64_t ix = ox * c.stride - c.padding + kx;
                  if (ix < 0 || ix >= w) continue;
                  const int32_t q = static_cast<int32_t>(x[((b * s[1] + first_in + ci) * h + iy) * w + ix]);
                  acc += static_cast<int64_t>(q - c.input_zero) * wo[(ci * c.kernel + ky) * c.kernel + kx];
                }
              }
            out[((b * c.out_channels + o) * oh + oy) * ow + ox] = output_of(c, o, acc);
          }
    });
    return y;
  }

  // The output of channel o for an accumulator (bias included): its level after requantization and
  // the activation's table, or, for the head, its dequantized value.
  static float output_of(const IntegerConv& c, int64_t o, int64_t acc) {
    const int32_t acc32 = static_cast<int32_t>(std::clamp<int64_t>(acc, INT32_MIN, INT32_MAX));
    if (c.dequantize) return static_cast<float>(acc32) * c.dequant_scale[static_cast<size_t>(o)];
    const uint8_t level = requantize_to_u8(acc32, c.multipliers[static_cast<size_t>(o)], c.output_zero);
    return c.activation_node >= 0 ? c.table[level] : level;
  }

  const graph::Graph& graph_;
  const QuantPlan& plan_;
  const std::vector<IntegerConv>& convs_;
};

}  // namespace pdyolo::quant
