// Running a graph. Both modes run the same step list (plan_steps in graph/fuse.hpp), honour the
// same taps, report to the same profiler (core/op_profile.hpp: "forward <op>", and each step by its
// node's name) and take
// their shapes and FLOPs from the graph (infer_shapes, node_flops):
//
//   graph::forward    autograd mode: Tensors and autograd ops, for training (gradients) and for any
//                     graph, fused or not. An activation after a batch norm is its epilogue.
//   graph::Executor   planned mode: inference without autograd, tensors or allocations in steady
//                     state, on a fused graph (graph::fuse), with one kernel set's entry points
//                     (graph::PlannedExecutor<Kernels>; Executor is the cpu backend's, CpuKernels in
//                     backend/dispatch.hpp; PlannedExecutor<RefKernels> runs the scalar references).
//                     What `pdyolo eval`, `detect` and `bench` run. An activation after a
//                     convolution is its epilogue.
//
// Planned mode stands on the skeleton the int8 executor shares (graph/planned.hpp: the kernel check,
// the steps, the arena plan per input shape and its memory, the timed loop). What is its own:
//   layout   NCHW f32, each buffer a whole number of cache lines
//   steps    weights packed for the GEMM at the first plan (and transformed for Winograd
//            F(2×2, 3×3) in 3×3 stride-1 layers on AVX-512); the steps run on raw pointers
// Layout: NCHW. Image n of a value starts at arena + offset + n · image_stride, and holds its
// [C, H, W] block contiguously (a value written into a concat slice has the concat's image stride).
#pragma once
#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/core/op_profile.hpp"
#include "pdyolo/graph/arena.hpp"
#include "pdyolo/graph/detect.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/planned.hpp"
#include "pdyolo/ops/conv.hpp"
#include "pdyolo/ops/elementwise.hpp"
#include "pdyolo/ops/norm.hpp"
#include "pdyolo/ops/pool.hpp"

namespace pdyolo::graph {

struct RunOptions {
  const Taps* taps = nullptr;  // node → tap (see graph/fuse.hpp)
  const WeightTaps* weight_taps = nullptr;  // conv node → its weight's tap (autograd mode, graph::forward)
  bool raw = true;             // return the raw maps [N, na, H, W, no] (pre-sigmoid: a teacher's logits)
  bool decode = true;          // in eval mode, return the decoded boxes [N, Σ na·H·W, no]
};

namespace detail {

// One step in autograd mode: the node's op on its inputs, with the merged activation (if any).
inline Tensor run_autograd_step(const Graph& g, const Step& step, const std::vector<Tensor>& in, const TapFn* weight_tap = nullptr) {
  const Node& node = g.nodes[step.node];
  switch (node.op) {
    case Op::conv: {
      const auto& c = node.get<ConvAttrs>();
      const Tensor bias = node.has_tensor("bias") ? node.tensor("bias") : Tensor();
      const Tensor weight = weight_tap ? (*weight_tap)(node.tensor("weight")) : node.tensor("weight");
      return conv2d(in[0], weight, bias, Conv2dParams().stride(c.stride).padding(c.padding).with_groups(c.groups));
    }
    case Op::batch_norm: {
      const auto& b = node.get<BatchNormAttrs>();
      const ActivationAttrs act = step.activation >= 0 ? g.nodes[step.activation].get<ActivationAttrs>() : ActivationAttrs{Activation::identity};
      if (g.is_training() && node.has_tensor("num_batches_tracked")) node.tensor("num_batches_tracked").data<int64_t>()[0] += 1;
      return batch_norm_act2d(in[0], node.tensor("weight"), node.tensor("bias"), node.tensor("running_mean"), node.tensor("running_var"),
                              BatchNormParams{g.is_training(), b.momentum, b.eps}, {act.kind, act.slope});
    }
    case Op::activation: {
      const auto& a = node.get<ActivationAttrs>();
      return activation(in[0], {a.kind, a.slope});
    }
    case Op::add: {
      Tensor sum_of = in[0];
      for (size_t j = 1; j < in.size(); ++j) sum_of = sum_of + in[j];
      return sum_of;
    }
    case Op::concat: return concat(in, 1);
    case Op::max_pool: {
      const auto& p = node.get<PoolAttrs>();
      return max_pool2d(in[0], {p.kernel, p.stride, p.padding});
    }
    case Op::upsample: return upsample_nearest(in[0], node.get<UpsampleAttrs>().scale);
    case Op::reorg: return reorg(in[0]);
    case Op::implicit_add: return in[0] + node.tensor("implicit");
    case Op::implicit_mul: return in[0] * node.tensor("implicit");
    case Op::input:
    case Op::detect: break;  // (forward handles both)
  }
  throw_error("graph: node '", node.name, "' (", op_name(node.op), ") cannot run as a step");
}

}  // namespace detail

// Autograd mode: x [N, C, H, W] → the detect node's outputs: the raw maps, and in eval mode the
// decoded boxes. Intermediate results are released as soon as their last reader has run (autograd
// keeps what backward needs).
inline DetectOutput forward(const Graph& g, const Tensor& x, const RunOptions& options = RunOptions()) {
  PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == Op::input, "graph: no input node");
  PDYOLO_CHECK(g.detect_node() >= 0, "graph: no detect node");
  const std::vector<Step> steps = plan_steps(g, Op::batch_norm, options.taps);
  std::vector<int> last_read(g.nodes.size(), -1);  // node → the last step reading it
  for (int s = 0; s < static_cast<int>(steps.size()); ++s)
    for (int in : g.nodes[steps[s].node].inputs) last_read[in] = s;
  std::vector<double> gflop;  // per node and image, when a profile is active (core/op_profile.hpp)
  if (OpProfile::active() && x.dim() == 4) {
    const std::vector<Shape> shapes = g.infer_shapes(x.shape()[2], x.shape()[3]);
    for (size_t i = 0; i < g.nodes.size(); ++i) gflop.push_back(g.node_flops(i, shapes) / 1e9);
  }
  std::vector<Tensor> values(g.nodes.size());
  values[0] = x;
  if (options.taps && options.taps->count(0)) values[0] = options.taps->at(0)(x);
  DetectOutput result;
  for (int s = 0; s < static_cast<int>(steps.size()); ++s) {
    const Step& step = steps[s];
    const Node& node = g.nodes[step.node];
    std::vector<Tensor> in;
    for (int j : node.inputs) in.push_back(values[j]);
    const OpTimer timer("forward", op_name(node.op), node.name, gflop.empty() ? 0.0 : gflop[static_cast<size_t>(step.node)]);
    if (node.op == Op::detect) {
      result.raw = detect_raw_maps(node.get<DetectAttrs>(), in);
      if (!g.is_training() && options.decode) {
        NoGradGuard no_grad;
        const Tensor anchor_grid = contiguous_copy(node.tensor("anchor_grid").to(DType::f32));  // [nl, 1, na, 1, 1, 2] pixels
        std::vector<Tensor> maps;
        std::vector<std::pair<int64_t, int64_t>> sizes;
        int64_t rows = 0;
        for (const Tensor& level : in) {
          maps.push_back(level.is_contiguous() ? level : contiguous_copy(level));
          sizes.emplace_back(level.shape()[2], level.shape()[3]);
          rows += node.get<DetectAttrs>().na * level.shape()[2] * level.shape()[3];
        }
        const int64_t n = x.shape()[0], no = node.get<DetectAttrs>().outputs_per_anchor();
        result.decoded = Tensor::empty({n, rows, no});
        decode_detections(node, anchor_grid, sizes, n,
                              [&](size_t level, int64_t i) { return maps[level].data<float>() + i * maps[level].numel() / n; },
                              result.decoded.data<float>());
      }
      if (!options.raw) result.raw.clear();
    } else {
      Tensor& out = values[step.output()];
      const TapFn* weight_tap = nullptr;
      if (options.weight_taps)
        if (const auto it = options.weight_taps->find(step.node); it != options.weight_taps->end()) weight_tap = &it->second;
      out = detail::run_autograd_step(g, step, in, weight_tap);
      if (options.taps && options.taps->count(step.output())) out = options.taps->at(step.output())(out);
    }
    for (int j : node.inputs)
      if (last_read[j] == s) values[j] = Tensor();
  }
  return result;
}

// `last` when nothing else holds it or a view of it any more and it has `shape`, else a new tensor
// (kept in `last`): a planned executor's output, so that steady-state runs allocate nothing.
inline Tensor reuse_or_allocate(Tensor& last, const Shape& shape) {
  const bool reusable = last.defined() && last.impl_ptr().use_count() == 1 && last.impl()->storage.use_count() == 1 && last.shape() == shape;
  if (!reusable) last = Tensor::empty(shape);
  return last;
}

// Planned mode (see the top of this file), on graph/planned.hpp's skeleton with the f32 kernels of
// one kernel set (backend/dispatch.hpp: CpuKernels, RefKernels; the planned-inference entries
// pack_conv, conv2d_image, max_pool2d_inference, upsample_nearest_forward, reorg_forward, unary,
// binary and copy), which run on pointers into the backend's arena.
template <class Kernels>
class PlannedExecutor {
 public:
  // g must be fused (no batch norm or implicit node) and end in a detect node. The executor keeps a
  // reference to g, so g must outlive it; weights are packed on the first run. Nodes with taps keep
  // their outputs as steps of their own.
  explicit PlannedExecutor(const Graph& g, Taps taps = {})
      : graph_(g), taps_(check_taps(g, std::move(taps))), planned_(g, Kernels::backend, DType::f32, &taps_, "executor") {
    kernels_.resize(planned_.steps().size());
    for (size_t s = 0; s < kernels_.size(); ++s)
      if (const int a = planned_.steps()[s].activation; a >= 0) kernels_[s].act = {g.nodes[a].get<ActivationAttrs>().kind, g.nodes[a].get<ActivationAttrs>().slope};
  }

  // images [N, C, H, W] (H, W multiples of the largest stride) → the raw maps [N, na, H, W, no] and
  // the decoded boxes [N, Σ na·h·w, no], each when asked for, as graph::forward gives them in eval mode.
  DetectOutput run(const Tensor& images, bool raw = false, bool decode = true) {
    PDYOLO_CHECK(images.dtype() == DType::f32 && images.dim() == 4, "executor: expected f32 images [N, C, H, W], got ",
                 shape_str(images.shape()));
    PDYOLO_CHECK(images.shape()[1] == graph_.channels(0), "executor: the model takes ", graph_.channels(0), " channels, the images have ",
                 images.shape()[1]);
    Tensor x = images.is_contiguous() ? images : contiguous_copy(images);
    if (taps_.count(0)) x = contiguous_copy(taps_.at(0)(x));
    plan(x.shape()[0], x.shape()[2], x.shape()[3]);
    input_ = x.data<float>();
    DetectOutput out;
    if (decode) out.decoded = output_tensor();
    output_ = decode ? out.decoded.data<float>() : nullptr;
    planned_.run("forward", [&](size_t s, const PlannedStep& step) {
      run_step(step, kernels_[s]);
      if (taps_.count(step.output)) apply_tap(step.output);
    });
    if (raw) out.raw = raw_maps();
    input_ = nullptr;
    return out;
  }

  // Bytes of the activation arena planned for the last input shape.
  int64_t arena_bytes() const { return planned_.arena_bytes(); }
  // Bytes the values would take if none shared memory (what the planning saves is the difference).
  int64_t unplanned_bytes() const { return planned_.arena().unplanned; }


 private:
  using Value = ArenaValue;
  using Buffer = ArenaBuffer;
  // What a step's kernels take beyond the plan (convolutions; the rest read their node's attributes).
  struct StepKernels {
    kernels::ActivationFn act;          // the merged activation
    kernels::Conv2dGeometry geometry;   // batch 1
    typename Kernels::PackedConv conv;  // its weights and bias as the kernels keep them
  };

  static Taps check_taps(const Graph& g, Taps taps) {
    for (const auto& [node, tap] : taps)
      PDYOLO_CHECK(node >= 0 && node < static_cast<int>(g.nodes.size()) && g.nodes[node].op != Op::detect, "executor: a tap on node ",
                   node, node >= 0 && node < static_cast<int>(g.nodes.size()) ? " ('" + g.nodes[node].name + "', detect)" : std::string(),
                   ": taps go on nodes with a value (tap the detect head's inputs for its maps)");
    return taps;
  }

  // Shapes, in-place concats, lifetimes and arena offsets for a batch of n images of h × w
  // (graph/planned.hpp); each buffer a whole number of 64-byte lines.
  void plan(int64_t n, int64_t h, int64_t w) {
    if (!planned_.replan(n, h, w, /*input_buffer=*/false)) return;
    planned_.allocate([n](const Buffer& b) { return (b.channels * b.h * b.w * n + 15) / 16 * 16 * static_cast<int64_t>(sizeof(float)); });
    prepare_steps(planned_.shapes());
    planned_.commit();
  }

  // Per-shape step data: conv geometries (weights are packed on the first plan), detect layout.
  void prepare_steps(const std::vector<Shape>& shapes) {
    detect_rows_ = 0;
    const std::vector<Value>& values = planned_.arena().values;
    for (size_t s = 0; s < kernels_.size(); ++s) {
      const PlannedStep& step = planned_.steps()[s];
      StepKernels& k = kernels_[s];
      const Node& n = graph_.nodes[step.node];
      if (n.op == Op::conv) {
        const auto& c = n.get<ConvAttrs>();
        const Value& in = values[step.inputs[0]];
        kernels::Conv2dGeometry& g = k.geometry;
        g = kernels::Conv2dGeometry{1, Graph::conv_in_channels(n), in.h, in.w, graph_.channels(step.node), c.kernel, c.kernel,
                                    shapes[step.node][2], shapes[step.node][3], c.stride, c.stride, c.padding, c.padding, 1, 1, c.groups};
        if (!Kernels::conv_is_packed(k.conv)) {
          const Tensor weight = contiguous_copy(n.tensor("weight").detach());
          const Tensor bias = n.has_tensor("bias") ? contiguous_copy(n.tensor("bias").detach()) : Tensor();
          Kernels::pack_conv(g, weight.data<float>(), bias.defined() ? bias.data<float>() : nullptr, k.conv);
        }
      } else if (n.op == Op::detect) {
        const auto& d = n.get<DetectAttrs>();
        detect_no_ = d.outputs_per_anchor();
        for (int v : step.inputs) detect_rows_ += d.na * values[v].h * values[v].w;
        anchors_ = contiguous_copy(n.tensor("anchor_grid").to(DType::f32));
      }
    }
  }

  // The tensor the next run decodes into: the previous run's, when nothing else holds it or a view
  // of it any more, so steady-state runs allocate nothing. (A fresh 8.6 MB block per run for
  // yolov7-tiny at 640² went to a new place in the heap depending on what came before, and
  // raised peak RSS by 8 MB or not.)
  Tensor output_tensor() { return reuse_or_allocate(last_output_, {batch(), detect_rows_, detect_no_}); }

  // Image `image` of value v.
  float* at(int v, int64_t image) {
    const Value& val = value(v);
    if (v == 0) return const_cast<float*>(input_) + image * val.channels * val.h * val.w;
    const Buffer& b = planned_.arena().buffers[val.buffer];
    return reinterpret_cast<float*>(planned_.arena_data() + b.offset) + image * b.channels * b.h * b.w + val.channel0 * val.h * val.w;
  }

  // Value v as a tensor [N, C, H, W] (a copy out of the arena).
  Tensor value_tensor(int v) {
    const Value& val = value(v);
    Tensor t = Tensor::empty({batch(), val.channels, val.h, val.w});
    const int64_t count = val.channels * val.h * val.w;
    for (int64_t i = 0; i < batch(); ++i) memory().copy_to_host(t.data<float>() + i * count, at(v, i), static_cast<size_t>(count) * sizeof(float), 0);
    return t;
  }

  // Hands value v to its tap and writes back what the tap returns.
  void apply_tap(int v) {
    const Tensor observed = value_tensor(v);
    const Tensor result = taps_.at(v)(observed);
    if (result.impl_ptr() == observed.impl_ptr()) return;  // observed, not replaced
    PDYOLO_CHECK(result.shape() == observed.shape(), "executor: the tap of node '", graph_.nodes[v].name, "' returned ",
                 shape_str(result.shape()), " for a value of ", shape_str(observed.shape()));
    const Tensor replacement = contiguous_copy(result.detach().to(DType::f32));
    const int64_t count = value(v).channels * value(v).h * value(v).w;
    for (int64_t i = 0; i < batch(); ++i) memory().copy_from_host(at(v, i), replacement.data<float>() + i * count, static_cast<size_t>(count) * sizeof(float), 0);
  }

  // The detect head's inputs as raw maps [N, na, H, W, no].
  std::vector<Tensor> raw_maps() {
    const PlannedStep& detect = planned_.steps().back();
    PDYOLO_CHECK(graph_.nodes[detect.node].op == Op::detect, "executor: the detect node must be the last");
    const auto& d = graph_.nodes[detect.node].get<DetectAttrs>();
    std::vector<Tensor> levels;
    for (int v : detect.inputs) levels.push_back(value_tensor(v));
    NoGradGuard no_grad;
    return detect_raw_maps(d, levels);
  }

  void run_step(const PlannedStep& step, const StepKernels& kern) {
    const Node& n = graph_.nodes[step.node];
    const Value& out = value(step.output);
    switch (n.op) {
      case Op::conv: {
        for (int64_t i = 0; i < batch(); ++i) Kernels::conv2d_image(kern.geometry, kern.conv, at(step.inputs[0], i), kern.act, at(step.output, i));
        return;
      }
      case Op::max_pool: {
        const auto& p = n.get<PoolAttrs>();
        const Value& in = value(step.inputs[0]);
        const kernels::Pool2dGeometry g{in.channels, in.h, in.w, out.h, out.w, p.kernel, p.kernel, p.stride, p.stride, p.padding, p.padding};
        for (int64_t i = 0; i < batch(); ++i) Kernels::max_pool2d_inference(g, at(step.inputs[0], i), at(step.output, i));
        return;
      }
      case Op::upsample: {
        const Value& in = value(step.inputs[0]);
        for (int64_t i = 0; i < batch(); ++i)
          Kernels::upsample_nearest_forward(in.channels, in.h, in.w, n.get<UpsampleAttrs>().scale, at(step.inputs[0], i),
                                               at(step.output, i));
        return;
      }
      case Op::reorg: {
        const Value& in = value(step.inputs[0]);
        PDYOLO_CHECK(in.h % 2 == 0 && in.w % 2 == 0, "executor: reorg '", n.name, "' needs an even height and width, got ", in.h, "x", in.w);
        for (int64_t i = 0; i < batch(); ++i) Kernels::reorg_forward(1, in.channels, in.h, in.w, at(step.inputs[0], i), at(step.output, i));
        return;
      }
      case Op::concat: {
        for (size_t j = 0; j < step.inputs.size(); ++j) {
          if (step.written_in_place[j]) continue;
          const int v = step.inputs[j];
          const int64_t count = value(v).channels * value(v).h * value(v).w;
          for (int64_t i = 0; i < batch(); ++i)
            Kernels::copy(at(step.output, i) + step.channel0[j] * out.h * out.w, at(v, i), static_cast<size_t>(count) * sizeof(float));
        }
        return;
      }
      case Op::activation: {  // (one that no conv takes as its epilogue)
        const auto& a = n.get<ActivationAttrs>();
        map_images(step, [&](const float* const* in, float* y, int64_t count) {
          switch (a.kind) {
            case Activation::identity: return Kernels::copy(y, in[0], static_cast<size_t>(count) * sizeof(float));
            case Activation::silu: return Kernels::unary(kernels::UnaryMap::silu, {}, count, in[0], y);
            case Activation::leaky_relu: return Kernels::unary(kernels::UnaryMap::leaky_relu, {a.slope}, count, in[0], y);
            case Activation::relu: return Kernels::unary(kernels::UnaryMap::relu, {}, count, in[0], y);
          }
        });
        return;
      }
      case Op::add: {  // summed left to right
        map_images(step, [&](const float* const* in, float* y, int64_t count) {
          if (step.inputs.size() == 1) Kernels::copy(y, in[0], static_cast<size_t>(count) * sizeof(float));
          else Kernels::binary(kernels::BinaryMap::add, {}, count, in[0], in[1], y);
          for (size_t j = 2; j < step.inputs.size(); ++j) Kernels::binary(kernels::BinaryMap::add, {}, count, y, in[j], y);
        });
        return;
      }
      case Op::detect: {
        if (!output_) return;
        std::vector<std::pair<int64_t, int64_t>> sizes;
        for (int v : step.inputs) sizes.emplace_back(value(v).h, value(v).w);
        decode_detections(n, anchors_, sizes, batch(), [&](size_t level, int64_t i) { return at(step.inputs[level], i); }, output_);
        return;
      }
      case Op::input:
      case Op::batch_norm:
      case Op::implicit_add:
      case Op::implicit_mul: break;  // (the constructor refuses unfused graphs)
    }
    throw_error("executor: node '", n.name, "' (", op_name(n.op), ") cannot run in planned mode");
  }

  // fn(inputs, output, count) per image over an elementwise step (all inputs share the output's shape).
  template <class Fn>
  void map_images(const PlannedStep& step, const Fn& fn) {
    const Value& out = value(step.output);
    std::vector<const float*> in(step.inputs.size());
    for (int64_t i = 0; i < batch(); ++i) {
      for (size_t j = 0; j < in.size(); ++j) in[j] = at(step.inputs[j], i);
      fn(in.data(), at(step.output, i), out.channels * out.h * out.w);
    }
  }

  const Value& value(int v) const { return planned_.arena().values[v]; }
  int64_t batch() const { return planned_.batch(); }
  // The backend's memory, to and from host tensors (taps, raw maps).
  static DeviceAllocator& memory() { return allocator_for(device_of(Kernels::backend)); }

  const Graph& graph_;
  Taps taps_;
  PlannedGraph planned_;
  std::vector<StepKernels> kernels_;  // per step
  Tensor anchors_;
  int64_t detect_rows_ = 0, detect_no_ = 0;
  const float* input_ = nullptr;
  float* output_ = nullptr;
  Tensor last_output_;  // see output_tensor
};

// What `pdyolo eval`, `detect` and `bench` run: the cpu backend's kernels.
using Executor = PlannedExecutor<CpuKernels>;

}  // namespace pdyolo::graph
