// The inference executor: runs a fused YOLO graph (graph::fuse: batch norms folded, RepConv and
// implicit layers merged) without autograd, tensors or allocations in steady state.
//
//   plan (once per input shape)
//     steps      one per node; an activation is merged into the convolution it follows, and the
//                convolution then applies bias + activation to each output tile as it finishes
//     in place   a concat's inputs are written by their producers straight into its channel slices
//     buffers    every value lives in one arena; buffers whose lifetimes do not overlap share
//                memory (greedy placement, largest first)
//   run          the steps in order on raw pointers; weights were packed for the GEMM at build
//                (and transformed for Winograd F(2×2, 3×3) in 3×3 stride-1 layers on AVX-512)
//
// Layout: NCHW. Image n of a value starts at arena + offset + n · image_stride, and holds its
// [C, H, W] block contiguously (a value written into a concat slice has the concat's image stride).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstring>
#include <string>
#include <vector>

#include "pdyolo/graph/graph.hpp"
#include "pdyolo/kernels/cpu/conv2d.hpp"
#include "pdyolo/kernels/cpu/pool.hpp"
#include "pdyolo/kernels/detect_decode.hpp"

namespace pdyolo::infer {

// Time spent in one step over the runs profiled (Engine::set_profiling).
struct StepProfile {
  std::string name;   // node name, e.g. "model.3.conv"
  std::string op;     // conv, max_pool, concat, ...
  double gflop = 0;   // 2 × multiply-adds per run (convolutions)
  double seconds = 0; // summed over the profiled runs
};

class Engine {
 public:
  // g must be fused (no batch norm) and end in a detect node. The engine keeps a reference to g (its
  // nodes and shapes), so g must outlive it; weights are packed on the first run.
  explicit Engine(const graph::Graph& g) : graph_(g) {
    PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == graph::Op::input, "infer: the graph has no input node");
    PDYOLO_CHECK(g.detect_node() >= 0, "infer: the graph has no detect node");
    for (const graph::Node& n : g.nodes)
      PDYOLO_CHECK(n.op != graph::Op::batch_norm && n.op != graph::Op::implicit_add && n.op != graph::Op::implicit_mul,
                   "infer: node '", n.name, "' (", graph::op_name(n.op), ") is not fused; run graph::fuse on the model first");
    build_steps();
  }

  // images [N, 3, H, W] (H, W multiples of the largest stride) → boxes [N, Σ na·h·w, no] as
  // graph::Graph::forward decodes them in eval mode.
  Tensor run(const Tensor& images) {
    PDYOLO_CHECK(images.dtype() == DType::f32 && images.dim() == 4, "infer: expected f32 images [N, C, H, W], got ",
                 shape_str(images.shape()));
    PDYOLO_CHECK(images.shape()[1] == graph_.channels(0), "infer: the model takes ", graph_.channels(0),
                 " channels, the images have ", images.shape()[1]);
    const Tensor x = images.is_contiguous() ? images : contiguous_copy(images);
    plan(x.shape()[0], x.shape()[2], x.shape()[3]);
    input_ = x.data<float>();
    Tensor decoded = output_tensor();
    output_ = decoded.data<float>();
    for (size_t s = 0; s < steps_.size(); ++s) {
      const auto start = std::chrono::steady_clock::now();
      run_step(steps_[s]);
      if (profiling_) profile_[s].seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
    input_ = nullptr;
    return decoded;
  }

  // The tensor the next run decodes into: the previous run's, when nothing else holds it or a view
  // of it any more, so steady-state runs allocate nothing. (A fresh 8.6 MB block per run for
  // yolov7-tiny at 640² went to a new place in the heap depending on what came before, and
  // raised peak RSS by 8 MB or not.)
  Tensor output_tensor() {
    const Shape shape{batch_, detect_rows_, detect_no_};
    const bool reusable = last_output_.defined() && last_output_.impl_ptr().use_count() == 1 &&
                          last_output_.impl()->storage.use_count() == 1 && last_output_.shape() == shape;
    if (!reusable) last_output_ = Tensor::empty(shape);
    return last_output_;
  }

  // Bytes of the activation arena planned for the last input shape.
  int64_t arena_bytes() const { return static_cast<int64_t>(arena_.size() * sizeof(float)); }
  // Bytes the values would take if none shared memory (what the planning saves is the difference).
  int64_t unplanned_bytes() const { return unplanned_floats_ * static_cast<int64_t>(sizeof(float)); }

  void set_profiling(bool on) { profiling_ = on; }
  const std::vector<StepProfile>& profile() const { return profile_; }

 private:
  // Where a value lives: buffer `buffer` at channel offset `channel0` (in channels of the buffer).
  struct Value {
    int buffer = -1;
    int64_t channel0 = 0;
    int64_t channels = 0, h = 0, w = 0;
    bool in_concat = false;  // written by its producer into a concat's slice
  };
  struct Buffer {
    int64_t channels = 0, h = 0, w = 0;
    int first = 0, last = 0;  // steps during which it must hold its data
    int64_t offset = 0;       // floats into the arena
  };
  struct Step {
    int node = -1;                      // the graph node (for a merged conv + activation: the conv)
    std::vector<int> inputs;            // value ids (= producing node indices)
    int output = -1;                    // value id
    kernels::ActivationFn act;          // convolutions: the activation merged into them
    kernels::Conv2dGeometry geometry;   // convolutions (batch 1)
    kernels::cpu::PackedConvWeights weights;
    Tensor bias;                        // convolutions with a bias, contiguous
    std::vector<bool> written_in_place; // concat: input j was written into the slice by its producer
    std::vector<int64_t> channel0;      // concat: the channel where input j's slice starts
  };

  void build_steps() {
    const std::vector<graph::Node>& nodes = graph_.nodes;
    std::vector<int> users(nodes.size(), 0);
    for (const graph::Node& n : nodes)
      for (int in : n.inputs) ++users[in];
    value_of_.assign(nodes.size(), -1);
    value_of_[0] = 0;
    for (int i = 1; i < static_cast<int>(nodes.size()); ++i) {
      const graph::Node& n = nodes[i];
      if (n.op == graph::Op::activation && nodes[n.inputs[0]].op == graph::Op::conv && users[n.inputs[0]] == 1) {
        if (!steps_.empty() && steps_.back().node == n.inputs[0]) {  // the conv is the step just before
          const auto& a = n.get<graph::ActivationAttrs>();
          steps_.back().act = {a.kind, a.slope};
          value_of_[i] = value_of_[n.inputs[0]];
          continue;
        }
      }
      Step step;
      step.node = i;
      for (int in : n.inputs) step.inputs.push_back(value_of_[in]);
      step.output = i;
      value_of_[i] = i;
      steps_.push_back(std::move(step));
    }
    profile_.clear();
    for (const Step& s : steps_) profile_.push_back({nodes[s.node].name, graph::op_name(nodes[s.node].op), 0.0, 0.0});
  }

  // Shapes, in-place concats, lifetimes and arena offsets for a batch of n images of h × w.
  void plan(int64_t n, int64_t h, int64_t w) {
    if (n == batch_ && h == height_ && w == width_) return;
    const std::vector<graph::Node>& nodes = graph_.nodes;
    const std::vector<Shape> shapes = graph_.infer_shapes(h, w);
    values_.assign(nodes.size(), Value{});
    buffers_.clear();
    auto own_buffer = [&](int v, int step) {
      values_[v].buffer = static_cast<int>(buffers_.size());
      buffers_.push_back({values_[v].channels, values_[v].h, values_[v].w, step, step, 0});
    };
    for (size_t i = 0; i < nodes.size(); ++i)
      if (value_of_[i] == static_cast<int>(i) && !shapes[i].empty())
        values_[i] = {-1, 0, shapes[i][1], shapes[i][2], shapes[i][3], false};
    // Each value gets a buffer; a concat's inputs that nothing else claimed are placed in its slices.
    std::vector<int> step_of(nodes.size(), -1);
    for (int s = 0; s < static_cast<int>(steps_.size()); ++s) step_of[steps_[s].output] = s;
    for (int s = 0; s < static_cast<int>(steps_.size()); ++s) {
      Step& step = steps_[s];
      const graph::Op op = nodes[step.node].op;
      if (op == graph::Op::detect) continue;
      own_buffer(step.output, s);
      if (op != graph::Op::concat) continue;
      step.written_in_place.assign(step.inputs.size(), false);
      step.channel0.assign(step.inputs.size(), 0);
      int64_t channel0 = 0;
      for (size_t j = 0; j < step.inputs.size(); ++j) {
        step.channel0[j] = channel0;
        const int v = step.inputs[j];
        const bool repeated = std::count(step.inputs.begin(), step.inputs.end(), v) > 1;
        const bool movable = v != 0 && !values_[v].in_concat && nodes[steps_[step_of[v]].node].op != graph::Op::concat && !repeated;
        if (movable) {
          // Its own buffer (created at its step, unused by anything else so far) is dropped.
          buffers_[values_[v].buffer].channels = 0;
          values_[v].buffer = values_[step.output].buffer;
          values_[v].channel0 = channel0;
          values_[v].in_concat = true;
          Buffer& b = buffers_[values_[v].buffer];
          b.first = std::min(b.first, step_of[v]);
          step.written_in_place[j] = true;
        }
        channel0 += values_[v].channels;
      }
    }
    // Lifetimes: a buffer lives until the last step that reads any value in it.
    for (int s = 0; s < static_cast<int>(steps_.size()); ++s)
      for (int v : steps_[s].inputs)
        if (v != 0) buffers_[values_[v].buffer].last = std::max(buffers_[values_[v].buffer].last, s);
    place_buffers(n);
    batch_ = n, height_ = h, width_ = w;
    prepare_steps(shapes);
  }

  // Greedy placement: largest buffers first, each at the lowest offset clear of every placed buffer
  // whose lifetime overlaps its own.
  void place_buffers(int64_t n) {
    auto size_of = [n](const Buffer& b) { return (b.channels * b.h * b.w * n + 15) / 16 * 16; };
    std::vector<int> order;
    unplanned_floats_ = 0;
    for (int b = 0; b < static_cast<int>(buffers_.size()); ++b)
      if (buffers_[b].channels > 0) order.push_back(b), unplanned_floats_ += size_of(buffers_[b]);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return size_of(buffers_[a]) > size_of(buffers_[b]); });
    std::vector<int> placed;
    int64_t total = 0;
    for (int b : order) {
      Buffer& buf = buffers_[b];
      std::vector<std::pair<int64_t, int64_t>> taken;  // [begin, end) of overlapping lifetimes
      for (int p : placed)
        if (buffers_[p].first <= buf.last && buf.first <= buffers_[p].last)
          taken.push_back({buffers_[p].offset, buffers_[p].offset + size_of(buffers_[p])});
      std::sort(taken.begin(), taken.end());
      int64_t offset = 0;
      for (const auto& [begin, end] : taken) {
        if (offset + size_of(buf) <= begin) break;
        offset = std::max(offset, end);
      }
      buf.offset = offset;
      total = std::max(total, offset + size_of(buf));
      placed.push_back(b);
    }
    arena_.assign(static_cast<size_t>(total), 0.0f);
  }

  // Per-shape step data: conv geometries (weights are packed on the first plan), detect layout.
  void prepare_steps(const std::vector<Shape>& shapes) {
    detect_rows_ = 0;
    for (size_t s = 0; s < steps_.size(); ++s) {
      Step& step = steps_[s];
      const graph::Node& n = graph_.nodes[step.node];
      if (n.op == graph::Op::conv) {
        const auto& c = n.get<graph::ConvAttrs>();
        const Value& in = values_[step.inputs[0]];
        kernels::Conv2dGeometry& g = step.geometry;
        g = kernels::Conv2dGeometry{1, graph::Graph::conv_in_channels(n), in.h, in.w, graph_.channels(step.node), c.kernel, c.kernel, shapes[step.node][2],
                                    shapes[step.node][3], c.stride, c.stride, c.padding, c.padding, 1, 1, c.groups};
        if (!step.weights.packed_for(kernels::cpu::gemm_isa())) {
          const Tensor weight = contiguous_copy(n.tensor("weight").detach());
          kernels::cpu::pack_conv_weights_with_winograd(g, weight.data<float>(), step.weights);
          if (n.has_tensor("bias")) step.bias = contiguous_copy(n.tensor("bias").detach());
        }
        profile_[s].gflop = graph_.node_flops(step.node, shapes) / 1e9;
      } else if (n.op == graph::Op::detect) {
        const auto& d = n.get<graph::DetectAttrs>();
        detect_no_ = d.outputs_per_anchor();
        for (int v : step.inputs) detect_rows_ += d.na * values_[v].h * values_[v].w;
        anchors_ = contiguous_copy(n.tensor("anchor_grid").to(DType::f32));
      }
    }
  }

  // Image `image` of value v.
  float* at(int v, int64_t image) {
    const Value& val = values_[v];
    if (v == 0) return const_cast<float*>(input_) + image * val.channels * val.h * val.w;
    const Buffer& b = buffers_[val.buffer];
    return arena_.data() + b.offset + image * b.channels * b.h * b.w + val.channel0 * val.h * val.w;
  }

  void run_step(const Step& step) {
    const graph::Node& n = graph_.nodes[step.node];
    const Value& out = values_[step.output];
    switch (n.op) {
      case graph::Op::conv: {
        const float* bias = step.bias.defined() ? step.bias.data<float>() : nullptr;
        for (int64_t i = 0; i < batch_; ++i)
          kernels::cpu::conv2d_image(step.geometry, step.weights, at(step.inputs[0], i), bias, step.act, at(step.output, i));
        return;
      }
      case graph::Op::max_pool: {
        const auto& p = n.get<graph::PoolAttrs>();
        const Value& in = values_[step.inputs[0]];
        const kernels::Pool2dGeometry g{in.channels, in.h, in.w, out.h, out.w, p.kernel, p.kernel, p.stride, p.stride, p.padding, p.padding};
        for (int64_t i = 0; i < batch_; ++i) kernels::cpu::max_pool2d_inference(g, at(step.inputs[0], i), at(step.output, i));
        return;
      }
      case graph::Op::upsample: {
        const Value& in = values_[step.inputs[0]];
        for (int64_t i = 0; i < batch_; ++i)
          kernels::cpu::upsample_nearest_forward(in.channels, in.h, in.w, n.get<graph::UpsampleAttrs>().scale, at(step.inputs[0], i),
                                                 at(step.output, i));
        return;
      }
      case graph::Op::concat: {
        for (size_t j = 0; j < step.inputs.size(); ++j) {
          if (step.written_in_place[j]) continue;
          const int v = step.inputs[j];
          const int64_t count = values_[v].channels * values_[v].h * values_[v].w;
          for (int64_t i = 0; i < batch_; ++i)
            std::memcpy(at(step.output, i) + step.channel0[j] * out.h * out.w, at(v, i), count * sizeof(float));
        }
        return;
      }
      case graph::Op::activation: {
        const auto& a = n.get<graph::ActivationAttrs>();
        map_images(step, [&](const float* const* in, float* y, int64_t count) {
          kernels::with_activation({a.kind, a.slope}, [&](auto f, auto) {
            for (int64_t k = 0; k < count; ++k) y[k] = f(in[0][k]);
          });
        });
        return;
      }
      case graph::Op::add: {
        map_images(step, [&](const float* const* in, float* y, int64_t count) {
          for (int64_t k = 0; k < count; ++k) y[k] = in[0][k] + in[1][k];
          for (size_t j = 2; j < step.inputs.size(); ++j)
            for (int64_t k = 0; k < count; ++k) y[k] += in[j][k];
        });
        return;
      }
      case graph::Op::detect: {
        const auto& d = n.get<graph::DetectAttrs>();
        int64_t first_row = 0;
        for (size_t level = 0; level < step.inputs.size(); ++level) {
          const Value& map = values_[step.inputs[level]];
          for (int64_t i = 0; i < batch_; ++i)
            kernels::decode_yolo_level(at(step.inputs[level], i), d.na, detect_no_, map.h, map.w, d.strides[level],
                                       anchors_.data<float>() + static_cast<int64_t>(level) * d.na * 2,
                                       output_ + (i * detect_rows_ + first_row) * detect_no_);
          first_row += d.na * map.h * map.w;
        }
        return;
      }
      default: throw_error("infer: node '", n.name, "' (", graph::op_name(n.op), ") cannot run in the inference engine");
    }
  }

  // fn(inputs, output, count) per image over an elementwise step (all inputs share the output's shape).
  template <class Fn>
  void map_images(const Step& step, const Fn& fn) {
    const Value& out = values_[step.output];
    std::vector<const float*> in(step.inputs.size());
    for (int64_t i = 0; i < batch_; ++i) {
      for (size_t j = 0; j < in.size(); ++j) in[j] = at(step.inputs[j], i);
      fn(in.data(), at(step.output, i), out.channels * out.h * out.w);
    }
  }

  const graph::Graph& graph_;
  std::vector<Step> steps_;
  std::vector<int> value_of_;  // node → the value holding its output (a merged activation → its conv)
  std::vector<Value> values_;
  std::vector<Buffer> buffers_;
  AlignedVector<float> arena_;  // on a cache line: the kernels load and store whole lines
  std::vector<StepProfile> profile_;
  Tensor anchors_;
  int64_t batch_ = -1, height_ = -1, width_ = -1, detect_rows_ = 0, detect_no_ = 0, unplanned_floats_ = 0;
  const float* input_ = nullptr;
  float* output_ = nullptr;
  Tensor last_output_;  // see output_tensor
  bool profiling_ = false;
};

}  // namespace pdyolo::infer
