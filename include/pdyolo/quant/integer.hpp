// The scalar integer reference runtime: the specification the fast int8 kernels are tested against.
// Between the image's 8-bit pixels and the detect head's dequantized maps there is only integer
// arithmetic, exactly as scheme.hpp states it:
//
//   conv        acc = bias_q + Σ (q_x − z_x) · q_w in int32 (zero padding contributes 0); then the
//               activation's table applied to requantize(acc) at the conv's own (s, z), or — for an
//               activation-free conv — requantize(acc) at its output's (s, z). Detect's convs
//               dequantize: acc · s_x · s_w (float raw maps).
//   max-pool, upsample, concat   move levels: their (s, z) are their inputs' (plan.hpp).
//   add         acc = Σ (q_k − z_x) over its inputs (which share one (s_x, z_x)), then requantize(acc)
//               by s_x / s_out to its own (s, z).
//   a conv kept in float (mixed precision)   dequantizes its input levels, convolves in float with
//               its float weights, applies its activation in float and quantizes the result at the
//               same (s, z) an integer conv would (a float head conv returns the float maps).
//
// Levels are held in f32 tensors (integers 0…255, exact in float) so that max-pool, upsample and
// concat reuse the float ops, which are exact on them. Each conv runs either as the scalar loop that
// states the arithmetic (IntegerKernels::reference) or through the int8 GEMM kernels
// (kernels/cpu/qconv.hpp: AVX-512 VNNI or portable), which compute the same integers and are
// tested to give bit-identical outputs.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/graph/detect.hpp"
#include "pdyolo/ops/pool.hpp"
#include "pdyolo/ops/shape.hpp"
#include "pdyolo/quant/int8_executor.hpp"

namespace pdyolo::quant {

enum class IntegerKernels { reference, fast };

class IntegerModel {
 public:
  // g fused; plan calibrated for it.
  // isa: the int8 kernel of IntegerKernels::fast (default: the best this CPU has).
  IntegerModel(const graph::Graph& g, QuantPlan plan, IntegerKernels kernels = IntegerKernels::fast,
               kernels::cpu::QconvIsa isa = kernels::cpu::best_qconv_isa())
      : graph_(g.clone()), plan_(std::move(plan)), kernels_(kernels), isa_(isa) {
    PDYOLO_CHECK(kernels::cpu::qconv_isa_available(isa), "quant: this CPU cannot run the ", kernels::cpu::qconv_isa_name(isa), " kernel");
    convs_.resize(graph_.nodes.size());
    for (int i = 0; i < static_cast<int>(graph_.nodes.size()); ++i)
      if (graph_.nodes[static_cast<size_t>(i)].op == graph::Op::conv) convs_[static_cast<size_t>(i)] = make_conv(i);
  }

  const QuantPlan& plan() const { return plan_; }

  // Time per step of the planned int8 executor (IntegerKernels::fast), from the next run on.
  void set_profiling(bool on) const {
    const std::lock_guard<std::mutex> lock(executor_mutex_);
    make_executor().set_profiling(on);
  }
  std::vector<graph::StepProfile> profile() const {
    const std::lock_guard<std::mutex> lock(executor_mutex_);
    return make_executor().profile();
  }
  const graph::Graph& graph() const { return graph_; }
  // The integer form of conv node `node` (what a model file stores).
  const IntegerConv& conv(int node) const {
    PDYOLO_CHECK(graph_.nodes.at(static_cast<size_t>(node)).op == graph::Op::conv, "quant: node ", node, " is not a conv");
    return convs_[static_cast<size_t>(node)];
  }

  // images [N, C, H, W] in [0, 1] (8-bit images: k/255) → the detect head's float raw maps (with
  // raw; the scalar reference always gives them) and decoded boxes (with decode) and, in `levels`,
  // every node's output levels (when given; the nodes of has_output_levels in plan.hpp).
  graph::DetectOutput run(const Tensor& images, std::vector<Tensor>* levels = nullptr, bool decode = true, bool raw = true) const {
    if (kernels_ == IntegerKernels::fast) return run_planned(images, levels, decode, raw);
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
          values[static_cast<size_t>(i)] = convs_[static_cast<size_t>(i)].in_float ? run_float_conv(i, in[0]) : run_conv(convs_[static_cast<size_t>(i)], in[0]);
          break;
        case graph::Op::activation:  // applied by its conv (the table); here only its value is passed on
          PDYOLO_CHECK(in[0].defined() && activation_of_conv(node.inputs[0]) == i, "quant: activation '", node.name,
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
        case graph::Op::detect: {
          out.raw = graph::detect_raw_maps(node.get<graph::DetectAttrs>(), in);
          if (decode) out.decoded = decode_head_maps(node, in, images.shape()[0]);
          break;
        }
        default: throw_error("quant: node '", node.name, "' (", graph::op_name(node.op), ") has no integer form");
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
  // The planned int8 executor (int8_executor.hpp), made for the first run and kept: the same outputs.
  graph::DetectOutput run_planned(const Tensor& images, std::vector<Tensor>* levels, bool decode, bool raw) const {
    const std::lock_guard<std::mutex> lock(executor_mutex_);
    graph::DetectOutput out = make_executor().run(images, levels, decode, raw);
    if (levels)
      for (size_t i = 0; i < levels->size(); ++i)
        if (!has_output_levels(graph_, plan_, static_cast<int>(i))) (*levels)[i] = Tensor();
    return out;
  }

  Int8Executor& make_executor() const {  // (executor_mutex_ held)
    PDYOLO_CHECK(kernels_ == IntegerKernels::fast, "quant: the scalar reference runtime has no planned executor");
    if (!executor_)
      executor_ = std::make_unique<Int8Executor>(graph_, plan_, convs_, [this](int node, const Tensor& x) { return run_float_conv(node, x); }, isa_);
    return *executor_;
  }

  // The activation node a conv's table applies (−1: none).
  int activation_of_conv(int conv) const { return convs_[static_cast<size_t>(conv)].activation_node; }

  IntegerConv make_conv(int i) const {
    const graph::Node& node = graph_.nodes[static_cast<size_t>(i)];
    const auto& attrs = node.get<graph::ConvAttrs>();
    const Tensor w = contiguous_copy(node.tensor("weight"));
    IntegerConv c;
    c.out_channels = w.shape()[0], c.in_per_group = w.shape()[1], c.kernel = w.shape()[2];
    c.stride = attrs.stride, c.padding = attrs.padding, c.groups = attrs.groups;
    c.activation_node = fused_activation(graph_, i);
    if (plan_.in_float(i)) {
      c.in_float = true;
      return c;
    }
    const QParams in = plan_.of(node.inputs[0]);
    c.input_zero = in.zero_point;
    const std::vector<float>& scales = plan_.weight_scales[static_cast<size_t>(i)];
    const int64_t per_channel = w.numel() / c.out_channels;
    const std::vector<float> bias = node.has_tensor("bias") ? node.tensor("bias").to_vector() : std::vector<float>(scales.size(), 0.0f);
    const bool loaded_bias = static_cast<int>(plan_.biases.size()) > i && !plan_.biases[static_cast<size_t>(i)].empty();
    for (int64_t o = 0; o < c.out_channels; ++o) {
      for (int64_t k = 0; k < per_channel; ++k)
        c.weight.push_back(static_cast<int8_t>(quantize_weight(w.data<float>()[o * per_channel + k], scales[static_cast<size_t>(o)])));
      c.bias.push_back(loaded_bias ? plan_.biases[static_cast<size_t>(i)].at(static_cast<size_t>(o))
                                   : quantize_bias(bias[static_cast<size_t>(o)], in.scale, scales[static_cast<size_t>(o)]));
    }
    if (kernels_ == IntegerKernels::fast) c.packed = kernels::cpu::pack_qconv_weights(c.weight.data(), c.out_channels, c.in_per_group, c.kernel, c.groups);
    if (!plan_.quantized(i)) {  // a detect-head conv
      c.activation_node = -1;
      c.dequantize = true;
      for (float s : scales) c.dequant_scale.push_back(static_cast<float>(static_cast<double>(in.scale) * s));
      if (kernels_ == IntegerKernels::fast)  // only its offsets (bias − z_x·Σ w) are used
        c.requant = kernels::cpu::make_qconv_requant(c.packed, c.input_zero, c.bias, std::vector<std::pair<int32_t, int32_t>>(scales.size(), {0, 1}), 0);
      return c;
    }
    const QParams out = plan_.of(i);
    c.output_zero = out.zero_point;
    for (float s : scales) c.multipliers.push_back(make_multiplier(static_cast<double>(in.scale) * s / out.scale));
    if (c.activation_node >= 0) {
      const auto& a = graph_.nodes[static_cast<size_t>(c.activation_node)].get<graph::ActivationAttrs>();
      c.table = activation_table({a.kind, a.slope}, out, plan_.of(c.activation_node));
    }
    if (kernels_ == IntegerKernels::fast) {
      std::vector<std::pair<int32_t, int32_t>> multipliers;
      for (const Multiplier& m : c.multipliers) multipliers.emplace_back(m.value, m.shift);
      c.requant = kernels::cpu::make_qconv_requant(c.packed, c.input_zero, c.bias, multipliers, c.output_zero,
                                                   c.activation_node >= 0 ? c.table.data() : nullptr);
    }
    return c;
  }

  // A conv kept in float: x [N, C, H, W] levels → its (activation's) output quantized to levels, or
  // float raw maps for a head conv.
  Tensor run_float_conv(int i, const Tensor& x_levels) const {
    const graph::Node& node = graph_.nodes[static_cast<size_t>(i)];
    const auto& attrs = node.get<graph::ConvAttrs>();
    const QParams in = plan_.of(node.inputs[0]);
    NoGradGuard no_grad;
    Tensor y = conv2d((x_levels - static_cast<float>(in.zero_point)) * in.scale, node.tensor("weight"),
                      node.has_tensor("bias") ? node.tensor("bias") : Tensor(),
                      Conv2dParams().stride(attrs.stride).padding(attrs.padding).with_groups(attrs.groups));
    const int act = activation_of_conv(i);
    if (act >= 0) {
      const auto& a = graph_.nodes[static_cast<size_t>(act)].get<graph::ActivationAttrs>();
      y = activation(y, {a.kind, a.slope});
    }
    if (!plan_.quantized(i)) return y;
    const QParams out = plan_.of(act >= 0 ? act : i);
    y = contiguous_copy(y);
    for (int64_t k = 0; k < y.numel(); ++k) y.data<float>()[k] = static_cast<float>(quantize_activation(y.data<float>()[k], out));
    return y;
  }

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

  graph::Graph graph_;
  QuantPlan plan_;
  IntegerKernels kernels_;
  kernels::cpu::QconvIsa isa_;
  std::vector<IntegerConv> convs_;  // per node (empty for other ops)
  mutable std::unique_ptr<Int8Executor> executor_;  // IntegerKernels::fast: planned at the first run
  mutable std::mutex executor_mutex_;
};

}  // namespace pdyolo::quant
