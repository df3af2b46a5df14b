// The planned int8 executor: the integer runtime on backend cpu (runtime.hpp's IntegerModel with
// Backend::cpu), computing exactly what the scalar reference in integer.hpp (Backend::ref) computes,
// on u8 levels end to end. It stands on the skeleton the fp32 executor shares (graph/planned.hpp:
// the kernel check against the dispatch table's u8 entries, the steps, the arena plan per input
// shape and its memory, the timed loop); what is its own:
//
//   layout   NHWC u8: each value's levels pixel by pixel, its channels contiguous, so a conv reads
//            its input directly (kernels/cpu/qconv.hpp) and a concat's inputs are channel slices
//            of its buffer, written in place by their producers.
//   borders  a buffer read by a conv with padding p carries a border of p pixels that holds
//            its zero point, refilled when the buffer comes to life (the arena reuses memory), so
//            the padding costs nothing in the kernels.
//   steps    conv: the int8 kernel, then requantization and the activation's table fused in one
//            pass per tile, written into the consumer's slice; detect-head convs dequantize into
//            float [C, H, W] maps or, when only the boxes are asked for, into σ in the boxes' rows
//            (the box transform follows in the detect step); convs kept in float (mixed precision)
//            go through the model's own float path; max-pool, upsample, reorg, concat and add move
//            or add levels.
//   batches  without `levels`, one image at a time through a one-image plan (run_image_by_image).
#pragma once
#include <cstring>
#include <functional>
#include <vector>

#include "pdyolo/core/op_profile.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/graph/arena.hpp"
#include "pdyolo/graph/detect.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/planned.hpp"
#include "pdyolo/kernels/cpu/qconv.hpp"
#include "pdyolo/ops/shape.hpp"
#include "pdyolo/quant/integer.hpp"

namespace pdyolo::quant {

// A conv's integer form as the int8 kernels take it: its weights packed, its requantization (or,
// for a head conv, the offsets bias − z_x·Σ w its dequantization adds) as constants.
struct PackedIntegerConv {
  kernels::cpu::PackedQConvWeights weights;
  kernels::cpu::QConvRequant requant;
};

inline PackedIntegerConv pack_integer_conv(const IntegerConv& c) {
  PackedIntegerConv p;
  if (c.in_float) return p;
  p.weights = kernels::cpu::pack_qconv_weights(c.weight.data(), c.out_channels, c.in_per_group, c.kernel, c.groups);
  if (c.dequantize) {  // only its offsets are used
    p.requant = kernels::cpu::make_qconv_requant(p.weights, c.input_zero, c.bias, std::vector<std::pair<int32_t, int32_t>>(c.dequant_scale.size(), {0, 1}), 0);
    return p;
  }
  std::vector<std::pair<int32_t, int32_t>> multipliers;
  for (const Multiplier& m : c.multipliers) multipliers.emplace_back(m.value, m.shift);
  p.requant = kernels::cpu::make_qconv_requant(p.weights, c.input_zero, c.bias, multipliers, c.output_zero,
                                               c.activation_node >= 0 ? c.table.data() : nullptr);
  return p;
}

class Int8Executor {
 public:
  // A conv kept in float: (conv node, its input levels [N, C, H, W] f32) → its output levels, or
  // float maps for a head conv.
  using FloatConv = std::function<Tensor(int node, const Tensor& levels)>;

  // g fused; convs: per node, the integer convs (integer.hpp), which it packs for the kernels; all
  // three must outlive the executor.
  Int8Executor(const graph::Graph& g, const QuantPlan& plan, const std::vector<IntegerConv>& convs, FloatConv float_conv,
               kernels::cpu::QconvIsa isa = kernels::cpu::best_qconv_isa())
      : graph_(g), plan_(plan), convs_(convs), float_conv_(std::move(float_conv)), isa_(isa),
        planned_(g, Backend::cpu, DType::u8, nullptr, "int8 executor") {
    for (const IntegerConv& c : convs) packed_.push_back(pack_integer_conv(c));
    for (const graph::PlannedStep& step : planned_.steps())
      if (g.nodes[static_cast<size_t>(step.node)].op == graph::Op::conv)
        PDYOLO_CHECK(convs[static_cast<size_t>(step.node)].activation_node == step.activation, "int8 executor: conv '",
                     g.nodes[static_cast<size_t>(step.node)].name, "' and its activation are not one step");
  }

  // images [N, C, H, W] in [0, 1] → the detect head's raw maps and decoded boxes (each when asked); in
  // `levels`, the output levels of every value a step produces (f32 [N, C, H, W]), when given.
  graph::DetectOutput run(const Tensor& images, std::vector<Tensor>* levels, bool decode, bool raw = true) {
    if (images.shape()[0] > 1 && !levels) return run_image_by_image(images, decode, raw);
    const Tensor x = images.is_contiguous() ? images : contiguous_copy(images);
    plan(x.shape()[0], x.shape()[2], x.shape()[3]);
    if (levels) levels->assign(graph_.nodes.size(), Tensor());
    {
      const OpTimer timer("int8", "input", graph_.nodes[0].name, 0.0);  // the images' pixels into levels
      fill_borders(0);
      write_image_levels(x);
    }
    if (levels) (*levels)[0] = levels_of(0);
    fused_decode_ = decode && !raw && !levels;
    if (fused_decode_) decoded_ = graph::reuse_or_allocate(last_decoded_, {batch(), decoded_rows_, detect_no_});
    graph::DetectOutput out;
    planned_.run("int8", [&](size_t s, const graph::PlannedStep& step) {
      const bool is_detect = graph_.nodes[static_cast<size_t>(step.node)].op == graph::Op::detect;
      fill_borders(static_cast<int>(s));
      if (is_detect) out = detect(step, decode, raw);
      else run_step(step);
      if (levels && !is_detect && is_level(step.output)) (*levels)[static_cast<size_t>(step.output)] = levels_of(step.output);
    });
    return out;
  }

  // Bytes of the u8 arena planned for the last input shape.
  int64_t arena_bytes() const { return planned_.arena_bytes(); }


 private:
  // A batch one image at a time through a one-image plan, so that each image's activations stay in
  // cache from layer to layer (a batch of 8 at 640 outgrows this machine's L3 and ran 1.2× slower
  // per image); the outputs are the batch's, image by image.
  graph::DetectOutput run_image_by_image(const Tensor& images, bool decode, bool raw) {
    const int64_t n = images.shape()[0];
    graph::DetectOutput out;
    std::vector<std::vector<Tensor>> maps;
    for (int64_t i = 0; i < n; ++i) {
      const graph::DetectOutput one = run(images.narrow(0, i, 1), nullptr, decode, raw);
      if (decode) {
        if (i == 0) out.decoded = graph::reuse_or_allocate(last_batch_decoded_, {n, one.decoded.shape()[1], one.decoded.shape()[2]});
        std::memcpy(out.decoded.data<float>() + i * one.decoded.numel(), one.decoded.data<float>(), static_cast<size_t>(one.decoded.numel()) * sizeof(float));
      }
      maps.resize(one.raw.size());
      for (size_t l = 0; l < one.raw.size(); ++l) maps[l].push_back(one.raw[l]);
    }
    for (const std::vector<Tensor>& level : maps) out.raw.push_back(concat(level, 0));
    return out;
  }

  bool is_level(int v) const { return v == 0 || !float_values_[static_cast<size_t>(v)].defined(); }
  // A value held as float maps outside the arena: the output of a conv that is not quantized (the head).
  bool is_float_value(int v) const { return v != 0 && graph_.nodes[static_cast<size_t>(v)].op == graph::Op::conv && !plan_.quantized(v); }

  // The skeleton's plan for n images of h × w (graph/planned.hpp), with this layout's buffers: NHWC,
  // each with the border its readers' padding needs, plus the kernels' read slack.
  void plan(int64_t n, int64_t h, int64_t w) {
    if (!planned_.replan(n, h, w, /*input_buffer=*/true)) return;
    graph::ArenaPlan& arena = planned_.arena();
    const size_t buffers = arena.buffers.size();
    pad_.assign(buffers, 0), zero_.assign(buffers, 0);
    for (const graph::PlannedStep& step : planned_.steps()) {
      const graph::Node& node = graph_.nodes[static_cast<size_t>(step.node)];
      if (node.op != graph::Op::conv) continue;
      const int b = arena.values[static_cast<size_t>(step.inputs[0])].buffer;
      pad_[static_cast<size_t>(b)] = std::max(pad_[static_cast<size_t>(b)], node.get<graph::ConvAttrs>().padding);
    }
    for (size_t v = 0; v < arena.values.size(); ++v) {
      const int b = arena.values[v].buffer;
      if (b < 0) continue;
      if (is_float_value(static_cast<int>(v))) arena.buffers[static_cast<size_t>(b)].channels = 0;  // lives in float_values_
      else zero_[static_cast<size_t>(b)] = plan_.of(static_cast<int>(v)).zero_point;
    }
    planned_.allocate([&](const graph::ArenaBuffer& b) { return n * image_bytes(b) + 64; });  // 64: the kernels' read slack
    const std::vector<Shape>& shapes = planned_.shapes();
    float_values_.assign(graph_.nodes.size(), Tensor());
    for (size_t v = 0; v < arena.values.size(); ++v)
      if (is_float_value(static_cast<int>(v))) float_values_[v] = Tensor::empty({n, shapes[v][1], shapes[v][2], shapes[v][3]});
    plan_detect(shapes);
    planned_.commit();
  }

  // Where each head conv's rows start in the decoded boxes, and the detect node's constants.
  void plan_detect(const std::vector<Shape>& shapes) {
    const graph::Node& detect = graph_.nodes[static_cast<size_t>(graph_.detect_node())];
    const auto& d = detect.get<graph::DetectAttrs>();
    detect_no_ = d.outputs_per_anchor();
    anchors_ = contiguous_copy(detect.tensor("anchor_grid").to(DType::f32));
    first_row_.assign(graph_.nodes.size(), 0);
    decoded_rows_ = 0;
    for (int v : detect.inputs) {
      first_row_[static_cast<size_t>(v)] = decoded_rows_;
      decoded_rows_ += d.na * shapes[static_cast<size_t>(v)][2] * shapes[static_cast<size_t>(v)][3];
    }
  }

  int64_t pad_of(const graph::ArenaBuffer& b) const { return pad_[static_cast<size_t>(&b - arena().buffers.data())]; }
  int64_t image_bytes(const graph::ArenaBuffer& b) const {
    const int64_t p = pad_of(b);
    return (b.h + 2 * p) * (b.w + 2 * p) * b.channels;
  }

  // Image i of value v.
  kernels::cpu::U8Image view(int v, int64_t i) {
    const graph::ArenaValue& val = arena().values[static_cast<size_t>(v)];
    const graph::ArenaBuffer& b = arena().buffers[static_cast<size_t>(val.buffer)];
    const int64_t p = pad_of(b), row = (b.w + 2 * p) * b.channels;
    uint8_t* image = planned_.arena_data() + b.offset + i * image_bytes(b);
    return {image + p * row + p * b.channels + val.channel0, b.channels, row};
  }

  // The border of every buffer that comes to life at step s (or, for s = 0, the input's) holds its zero point.
  void fill_borders(int s) {
    for (size_t b = 0; b < arena().buffers.size(); ++b) {
      const graph::ArenaBuffer& buf = arena().buffers[b];
      if (buf.channels == 0 || pad_[b] == 0 || buf.first != s) continue;
      const int64_t p = pad_[b], row = (buf.w + 2 * p) * buf.channels;
      const auto z = static_cast<uint8_t>(zero_[b]);
      for (int64_t i = 0; i < batch(); ++i) {
        uint8_t* image = planned_.arena_data() + buf.offset + i * image_bytes(buf);
        std::memset(image, z, static_cast<size_t>(p * row));
        std::memset(image + (p + buf.h) * row, z, static_cast<size_t>(p * row));
        for (int64_t y = p; y < p + buf.h; ++y) {
          std::memset(image + y * row, z, static_cast<size_t>(p * buf.channels));
          std::memset(image + y * row + (p + buf.w) * buf.channels, z, static_cast<size_t>(p * buf.channels));
        }
      }
    }
  }

  // Pixels as levels: q = clamp(round(x · 255), 0, 255), the image's (s, z) = (1/255, 0), rounded
  // to nearest even as the scheme's round_half_even: adding and subtracting 1.5·2^23 leaves a float
  // in [0, 255] rounded to an integer by the FPU's default mode (exact, and it vectorizes).
  void write_image_levels(const Tensor& x) {
    const int64_t c = x.shape()[1], h = x.shape()[2], w = x.shape()[3];
    for (int64_t i = 0; i < batch(); ++i) {
      const kernels::cpu::U8Image dst = view(0, i);
      const float* src = x.data<float>() + i * c * h * w;
      parallel_tasks(h, [&](int64_t y) {
        thread_local std::vector<uint8_t> rows;  // [C][W] levels of this image row
        rows.resize(static_cast<size_t>(c * w));
        for (int64_t ch = 0; ch < c; ++ch) pixel_levels(src + (ch * h + y) * w, rows.data() + ch * w, w);
        interleave(rows.data(), c, w, dst.at(y, 0), dst.pixel_stride);
      });
    }
  }

  // out[k] = clamp(round(in[k] · 255), 0, 255) (restrict: the compiler may vectorize it).
  static void pixel_levels(const float* __restrict in, uint8_t* __restrict out, int64_t n) {
    for (int64_t k = 0; k < n; ++k) {
      const float p = in[k] * 255.0f, clamped = p > 0.0f ? (p < 255.0f ? p : 255.0f) : 0.0f;  // (NaN: 0)
      out[k] = static_cast<uint8_t>(static_cast<int32_t>((clamped + 12582912.0f) - 12582912.0f));
    }
  }

  // rows [c][w] → pixels (pixel x's c channels at dst + x · pixel_stride).
  static void interleave(const uint8_t* __restrict rows, int64_t c, int64_t w, uint8_t* __restrict dst, int64_t pixel_stride) {
    for (int64_t ch = 0; ch < c; ++ch)
      for (int64_t x = 0; x < w; ++x) dst[x * pixel_stride + ch] = rows[ch * w + x];
  }

  // Value v's levels as f32 [N, C, H, W].
  Tensor levels_of(int v) {
    const graph::ArenaValue& val = arena().values[static_cast<size_t>(v)];
    Tensor t = Tensor::empty({batch(), val.channels, val.h, val.w});
    float* dst = t.data<float>();
    for (int64_t i = 0; i < batch(); ++i) {
      const kernels::cpu::U8Image src = view(v, i);
      for (int64_t c = 0; c < val.channels; ++c)
        for (int64_t y = 0; y < val.h; ++y)
          for (int64_t x = 0; x < val.w; ++x) *dst++ = src.at(y, x)[c];
    }
    return t;
  }

  // Writes f32 levels [N, C, H, W] into value v.
  void write_levels(int v, const Tensor& levels) {
    const Tensor t = contiguous_copy(levels);
    const graph::ArenaValue& val = arena().values[static_cast<size_t>(v)];
    const float* src = t.data<float>();
    for (int64_t i = 0; i < batch(); ++i) {
      const kernels::cpu::U8Image dst = view(v, i);
      for (int64_t c = 0; c < val.channels; ++c)
        for (int64_t y = 0; y < val.h; ++y)
          for (int64_t x = 0; x < val.w; ++x) dst.at(y, x)[c] = static_cast<uint8_t>(*src++);
    }
  }

  void run_step(const graph::PlannedStep& step) {
    const graph::Node& node = graph_.nodes[static_cast<size_t>(step.node)];
    switch (node.op) {
      case graph::Op::conv: return run_conv(step);
      case graph::Op::max_pool: return run_max_pool(step, node.get<graph::PoolAttrs>());
      case graph::Op::upsample: return run_upsample(step, node.get<graph::UpsampleAttrs>().scale);
      case graph::Op::reorg: return run_reorg(step);
      case graph::Op::concat: return run_concat(step);
      case graph::Op::add: return run_add(step);
      case graph::Op::activation:
        throw_error("int8 executor: activation '", node.name, "' does not follow a conv it alone reads");
      case graph::Op::input:
      case graph::Op::batch_norm:
      case graph::Op::implicit_add:
      case graph::Op::implicit_mul:
      case graph::Op::detect: break;  // (detect: run() calls detect())
    }
    throw_error("int8 executor: node '", node.name, "' (", graph::op_name(node.op), ") has no integer form");
  }

  kernels::cpu::QConvGeometry geometry(const graph::PlannedStep& step) const {
    const IntegerConv& c = convs_[static_cast<size_t>(step.node)];
    const graph::ArenaValue& in = arena().values[static_cast<size_t>(step.inputs[0])];
    kernels::cpu::QConvGeometry g;
    g.in_channels = in.channels, g.height = in.h, g.width = in.w;
    g.out_channels = c.out_channels, g.kernel = c.kernel, g.stride = c.stride, g.padding = c.padding, g.groups = c.groups;
    return g;
  }

  void run_conv(const graph::PlannedStep& step) {
    const IntegerConv& c = convs_[static_cast<size_t>(step.node)];
    const PackedIntegerConv& packed = packed_[static_cast<size_t>(step.node)];
    if (c.in_float) {
      const Tensor y = float_conv_(step.node, levels_of(step.inputs[0]));
      if (is_float_value(step.output)) float_values_[static_cast<size_t>(step.output)] = y;
      else write_levels(step.output, y);
      return;
    }
    const kernels::cpu::QConvGeometry g = geometry(step);
    const int64_t oh = g.out_height(), ow = g.out_width();
    kernels::cpu::QConvOutput out;
    out.requant = &packed.requant;
    out.scale = c.dequant_scale.data();
    out.outputs_per_anchor = detect_no_;
    using Kind = kernels::cpu::QConvOutput::Kind;
    // The head: acc · s_x · s_w, then σ into its rows of the decoded boxes (only boxes asked for) or
    // into float [C, H, W] maps; any other conv: requantized levels in its consumer's slice.
    out.kind = !c.dequantize ? Kind::requantize : fused_decode_ ? Kind::dequantize_sigmoid_rows : Kind::dequantize;
    for (int64_t i = 0; i < batch(); ++i) {
      switch (out.kind) {
        case Kind::requantize: out.levels = view(step.output, i); break;
        case Kind::dequantize: out.maps = float_values_[static_cast<size_t>(step.output)].data<float>() + i * c.out_channels * oh * ow; break;
        case Kind::dequantize_sigmoid_rows:
          out.rows = decoded_.data<float>() + (i * decoded_rows_ + first_row_[static_cast<size_t>(step.output)]) * detect_no_;
          break;
      }
      CpuKernels::qconv2d(view(step.inputs[0], i), g, packed.weights, out, isa_);
    }
  }

  void run_max_pool(const graph::PlannedStep& step, const graph::PoolAttrs& p) {
    const graph::ArenaValue& in = arena().values[static_cast<size_t>(step.inputs[0])];
    const graph::ArenaValue& out = arena().values[static_cast<size_t>(step.output)];
    const kernels::Pool2dGeometry g{in.channels, in.h, in.w, out.h, out.w, p.kernel, p.kernel, p.stride, p.stride, p.padding, p.padding};
    for (int64_t i = 0; i < batch(); ++i) CpuKernels::max_pool2d_levels(g, view(step.inputs[0], i), view(step.output, i));
  }

  void run_upsample(const graph::PlannedStep& step, int64_t scale) {
    const graph::ArenaValue& out = arena().values[static_cast<size_t>(step.output)];
    for (int64_t i = 0; i < batch(); ++i) CpuKernels::upsample_nearest_levels(out.channels, out.h, out.w, scale, view(step.inputs[0], i), view(step.output, i));
  }

  void run_reorg(const graph::PlannedStep& step) {
    const graph::ArenaValue& in = arena().values[static_cast<size_t>(step.inputs[0])];
    PDYOLO_CHECK(in.h % 2 == 0 && in.w % 2 == 0, "int8 executor: reorg '", graph_.nodes[static_cast<size_t>(step.node)].name,
                 "' needs an even height and width, got ", in.h, "x", in.w);
    for (int64_t i = 0; i < batch(); ++i) CpuKernels::reorg_levels(in.channels, in.h, in.w, view(step.inputs[0], i), view(step.output, i));
  }

  void run_concat(const graph::PlannedStep& step) {
    const graph::ArenaValue& out = arena().values[static_cast<size_t>(step.output)];
    for (size_t j = 0; j < step.inputs.size(); ++j) {
      if (step.written_in_place[j]) continue;
      const int v = step.inputs[j];
      const int64_t channels = arena().values[static_cast<size_t>(v)].channels;
      for (int64_t i = 0; i < batch(); ++i) {
        kernels::cpu::U8Image slice = view(step.output, i);
        slice.origin += step.channel0[j];
        CpuKernels::copy_levels(channels, out.h, out.w, view(v, i), slice);
      }
    }
  }

  // A residual add of levels at one (s_x, z_x), requantized to the add's own (s, z).
  void run_add(const graph::PlannedStep& step) {
    const QParams in = plan_.of(graph_.nodes[static_cast<size_t>(step.node)].inputs[0]), out = plan_.of(step.node);
    const Multiplier m = make_multiplier(static_cast<double>(in.scale) / out.scale);
    const graph::ArenaValue& val = arena().values[static_cast<size_t>(step.output)];
    std::vector<kernels::cpu::U8Image> src(step.inputs.size());
    for (int64_t i = 0; i < batch(); ++i) {
      for (size_t j = 0; j < src.size(); ++j) src[j] = view(step.inputs[j], i);
      CpuKernels::add_levels(val.channels, val.h, val.w, src.data(), static_cast<int64_t>(src.size()), in.zero_point, m, out.zero_point,
                             view(step.output, i));
    }
  }

  graph::DetectOutput detect(const graph::PlannedStep& step, bool decode, bool raw) {
    const graph::Node& node = graph_.nodes[static_cast<size_t>(step.node)];
    if (fused_decode_) return finish_decoding(step);
    std::vector<Tensor> maps;
    for (int v : step.inputs) {
      PDYOLO_CHECK(float_values_[static_cast<size_t>(v)].defined(), "int8 executor: detect input '", graph_.nodes[static_cast<size_t>(v)].name,
                   "' is not a dequantizing conv");
      maps.push_back(float_values_[static_cast<size_t>(v)]);
    }
    graph::DetectOutput out;
    if (raw) out.raw = graph::detect_raw_maps(node.get<graph::DetectAttrs>(), maps);
    if (decode) out.decoded = decode_head_maps(node, maps, batch(), &last_decoded_);
    return out;
  }

  // The decoded boxes of a run whose head convs wrote their σ straight into them: each such level's
  // box transform (graph::decode_box); a head conv kept in float decodes its float maps.
  graph::DetectOutput finish_decoding(const graph::PlannedStep& step) {
    const auto& d = graph_.nodes[static_cast<size_t>(step.node)].get<graph::DetectAttrs>();
    const float* anchors = anchors_.data<float>();
    for (size_t l = 0; l < step.inputs.size(); ++l) {
      const int v = step.inputs[l];
      const graph::ArenaValue& val = arena().values[static_cast<size_t>(v)];
      const float stride = d.strides[l];
      const float* level_anchors = anchors + static_cast<int64_t>(l) * d.na * 2;
      for (int64_t i = 0; i < batch(); ++i) {
        float* rows = decoded_.data<float>() + (i * decoded_rows_ + first_row_[static_cast<size_t>(v)]) * detect_no_;
        if (convs_[static_cast<size_t>(v)].in_float) {
          const Tensor& map = float_values_[static_cast<size_t>(v)];
          graph::decode_yolo_level(map.data<float>() + i * map.numel() / batch(), d.na, detect_no_, val.h, val.w, stride, level_anchors, rows);
          continue;
        }
        parallel_tasks(d.na * val.h, [&](int64_t ar) {
          const int64_t a = ar / val.h, row = ar % val.h;
          for (int64_t col = 0; col < val.w; ++col) graph::decode_box(rows + ((a * val.h + row) * val.w + col) * detect_no_, col, row, stride, level_anchors + a * 2);
        });
      }
    }
    graph::DetectOutput out;
    out.decoded = decoded_;
    decoded_ = Tensor();  // (so that the next run may reuse it when the caller lets it go)
    return out;
  }

  graph::ArenaPlan& arena() { return planned_.arena(); }
  const graph::ArenaPlan& arena() const { return planned_.arena(); }
  int64_t batch() const { return planned_.batch(); }

  const graph::Graph& graph_;
  const QuantPlan& plan_;
  const std::vector<IntegerConv>& convs_;
  std::vector<PackedIntegerConv> packed_;  // per node: convs_ packed for the kernels
  FloatConv float_conv_;
  kernels::cpu::QconvIsa isa_;
  graph::PlannedGraph planned_;
  std::vector<int64_t> pad_;      // per buffer: the border the convs reading it need
  std::vector<int32_t> zero_;     // per buffer: its values' zero point
  std::vector<Tensor> float_values_;  // per value: the head's dequantized maps [N, C, H, W]
  Tensor last_decoded_;  // the previous run's decoded boxes, reused when free (graph::reuse_or_allocate)
  Tensor last_batch_decoded_;  // the same for a batch run image by image
  // Decoding fused into the head convs (a run that asks for decoded boxes only):
  bool fused_decode_ = false;
  Tensor decoded_;                  // [N, rows, no] of this run
  int64_t decoded_rows_ = 0, detect_no_ = 0;
  std::vector<int64_t> first_row_;  // per head conv (node): its first row in decoded_
  Tensor anchors_;                  // the detect node's anchor grid, contiguous f32
};

}  // namespace pdyolo::quant
