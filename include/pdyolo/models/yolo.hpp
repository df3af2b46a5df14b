// Builds the YOLOv7 family from an official config into a graph::Graph, node by node, the way the
// reference's parse_model builds modules — same channel arithmetic (width_multiple, rounded up to
// a multiple of 8), same defaults, and tensors under the official checkpoint names.
#pragma once
#include <cmath>
#include <optional>

#include "pdyolo/graph/channels.hpp"
#include "pdyolo/models/config.hpp"
#include "pdyolo/nn/layers.hpp"

namespace pdyolo::models {

struct BuildOptions {
  bool repconv_deploy = false;  // RepConv in its fused form (rbr_reparam) instead of three branches
  uint64_t seed = 0;            // initial weights
  // A config is refused before allocation once its weights would exceed this many parameters
  // (2^31: 8 GiB of fp32, 30× yolov7-e6e); a fuzzer or a service lowers it.
  int64_t max_parameters = int64_t{1} << 31;
};

// A detection model: its graph (which alone describes it), its class names, and the config it was
// built from while one still describes it (a pruned model has none).
struct YoloModel {
  graph::Graph graph;
  std::vector<std::string> names;   // class names (empty when unknown)
  std::optional<ModelConfig> config;

  const graph::DetectAttrs& detect() const {
    const int d = graph.detect_node();
    PDYOLO_CHECK(d >= 0, "the model has no detect node");
    return graph.nodes[d].get<graph::DetectAttrs>();
  }
  int64_t nc() const { return detect().nc; }
  int64_t in_channels() const { return graph.channels(0); }
};

namespace detail {

inline int64_t make_divisible(double x, int64_t divisor) {
  return static_cast<int64_t>(std::ceil(x / static_cast<double>(divisor))) * divisor;
}

class YoloBuilder {
 public:
  YoloBuilder(const ModelConfig& cfg, const BuildOptions& options)
      : cfg_(cfg), options_(options), gen_(options.seed), na_(static_cast<int64_t>(cfg.anchors.front().size() / 2)) {}

  graph::Graph build() {
    graph::Node input;
    input.op = graph::Op::input;
    input.name = "input";
    input.fixed_channels = true;
    input.attrs = graph::InputAttrs{cfg_.in_channels};
    graph_.add(input);
    for (const LayerSpec& layer : cfg_.layers) {
      if (layer_ && (layer_->module == "Detect" || layer_->module == "IDetect")) {
        layer_ = &layer;
        fail("a layer after the Detect layer: Detect (or IDetect) must be the config's last layer (its output is no feature map)");
      }
      layer_ = &layer;
      if (layer.number != 1 && layer.module != "SPPCSPC" && layer.module != "Bottleneck")
        fail("field 'number': repeating module " + layer.module + " " + std::to_string(layer.number) + " times is not supported");
      const int out = build_layer(layer);
      graph_.layer_output.push_back(out);
    }
    finish_detect();
    return std::move(graph_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    const std::string where = "layer " + std::to_string(layer_->index) + " (" + layer_->module + "): ";
    if (layer_->line > 0) throw_error(cfg_.source, ":", layer_->line, ": ", where, what);
    throw_error(cfg_.source, ": ", where, what);
  }

  int64_t no() const { return na_ * (cfg_.nc + 5); }
  std::string prefix() const { return "model." + std::to_string(layer_->index); }
  int input_node(int from) const { return from < 0 ? 0 : graph_.layer_output[from]; }

  // ---- argument evaluation, as the reference's eval of each arg ----------------------------------
  const io::Value* arg(size_t i) const {
    if (i >= layer_->args.size()) return nullptr;
    const io::Value& v = layer_->args[i];
    if (v.is(io::Value::Kind::none) || (v.is(io::Value::Kind::string) && v.str == "None")) return nullptr;
    return &v;
  }
  // An integer argument within the range its field allows (channels, kernels, strides, paddings,
  // groups and scales of any real network are far inside them).
  int64_t int_arg(size_t i, int64_t fallback, const char* field) const {
    const io::Value* v = arg(i);
    if (!v) return fallback;
    if (v->is(io::Value::Kind::string) && v->str == "nc") return cfg_.nc;
    if (!v->is(io::Value::Kind::integer)) fail(std::string("argument '") + field + "' must be an integer");
    const std::string f = field;
    const auto [low, high] = f == "c2" || f == "g" ? std::pair<int64_t, int64_t>{1, graph::kMaxChannels}
                             : f == "k" || f == "s" || f == "scale_factor" ? std::pair<int64_t, int64_t>{1, 64}
                             : f == "p" ? std::pair<int64_t, int64_t>{0, 64}
                                        : std::pair<int64_t, int64_t>{INT32_MIN, INT32_MAX};
    if (v->integer < low || v->integer > high)
      fail("argument '" + f + "' is " + std::to_string(v->integer) + "; it must lie in [" + std::to_string(low) + ", " +
           std::to_string(high) + "]");
    return v->integer;
  }
  // A kernel size: an integer, or a list of equal integers ([1, 1], as yolov3.yaml writes it).
  int64_t kernel_arg(size_t i, int64_t fallback) const {
    const io::Value* v = arg(i);
    if (!v || !v->is(io::Value::Kind::list)) return int_arg(i, fallback, "k");
    if (v->items.empty()) fail("argument 'k' is an empty list");
    for (const io::Value& k : v->items)
      if (!k.is(io::Value::Kind::integer) || k.integer != v->items[0].integer)
        fail("argument 'k': only square kernels (a list of equal integers) are supported");
    if (v->items[0].integer < 1 || v->items[0].integer > 64) fail("argument 'k' must lie in [1, 64]");
    return v->items[0].integer;
  }
  bool bool_arg(size_t i, bool fallback, const char* field) const {
    const io::Value* v = arg(i);
    if (!v) return fallback;
    if (!v->is(io::Value::Kind::boolean)) fail(std::string("argument '") + field + "' must be True or False");
    return v->boolean;
  }
  graph::ActivationAttrs activation_arg(size_t i) const {
    const io::Value* v = arg(i);
    graph::ActivationAttrs a;  // default: SiLU, as Conv(act=True)
    if (!v || (v->is(io::Value::Kind::boolean) && v->boolean)) return a;
    if (v->is(io::Value::Kind::boolean)) {
      a.kind = graph::Activation::identity;
      return a;
    }
    const std::string s = v->is(io::Value::Kind::string) ? v->str : "";
    if (s == "nn.SiLU()") return a;
    if (s == "nn.ReLU()") {
      a.kind = graph::Activation::relu;
      return a;
    }
    if (s == "nn.Identity()") {
      a.kind = graph::Activation::identity;
      return a;
    }
    if (s.rfind("nn.LeakyReLU(", 0) == 0 && s.back() == ')') {
      a.kind = graph::Activation::leaky_relu;
      const std::string inner = s.substr(13, s.size() - 14);
      try {
        a.slope = inner.empty() ? 0.01f : std::stof(inner);
      } catch (const std::exception&) {
        fail("argument 'act': bad slope in '" + s + "'");
      }
      return a;
    }
    fail("argument 'act': unknown activation '" + s + "'");
  }
  int64_t width(int64_t c2) const { return c2 == no() ? c2 : make_divisible(c2 * cfg_.width_multiple, 8); }

  // ---- node factories ----------------------------------------------------------------------------
  Tensor weight_init(const Shape& shape, int64_t fan_in) {
    return nn::init_uniform_fan_in(shape, fan_in, gen_).set_requires_grad();
  }

  int64_t channels_of(int node) const { return graph_.channels(node); }

  void reserve_parameters(int64_t count) {
    parameters_ += count;
    if (parameters_ > options_.max_parameters)
      fail("the model would hold more than " + std::to_string(options_.max_parameters) + " parameters (" +
           std::to_string(parameters_) + " so far), more than pdyolo builds");
  }

  // A conv reading all of `input`'s channels; fixed: its outputs are detection maps.
  int conv_node(const std::string& name, int input, int64_t c2, int64_t k, int64_t s, int64_t p, int64_t g, bool bias,
                bool fixed = false) {
    const int64_t c1 = channels_of(input);
    if (c2 < 1 || c2 > graph::kMaxChannels)
      fail("the conv would have " + std::to_string(c2) + " output channels; at most " + std::to_string(graph::kMaxChannels) + " are supported");
    if (c1 % g || c2 % g) fail("channels " + std::to_string(c1) + "→" + std::to_string(c2) + " not divisible by groups " + std::to_string(g));
    graph::Node n;
    n.op = graph::Op::conv;
    n.name = name;
    n.inputs = {input};
    n.fixed_channels = fixed;
    n.layer = layer_->index;
    n.attrs = graph::ConvAttrs{k, s, p, g};
    const int64_t fan_in = c1 / g * k * k;
    reserve_parameters(c2 * fan_in + (bias ? c2 : 0));  // c2 ≤ 2^16, fan_in ≤ 2^28: no overflow
    n.tensors.emplace_back("weight", weight_init({c2, c1 / g, k, k}, fan_in));
    if (bias) n.tensors.emplace_back("bias", weight_init({c2}, fan_in));
    return graph_.add(std::move(n));
  }

  int bn_node(const std::string& name, int input) {
    const int64_t c = channels_of(input);
    graph::Node n;
    n.op = graph::Op::batch_norm;
    n.name = name;
    n.inputs = {input};
    n.layer = layer_->index;
    n.attrs = graph::BatchNormAttrs{};
    n.tensors = {{"weight", Tensor::ones({c}).set_requires_grad()},
                 {"bias", Tensor::zeros({c}).set_requires_grad()},
                 {"running_mean", Tensor::zeros({c})},
                 {"running_var", Tensor::ones({c})},
                 {"num_batches_tracked", Tensor::zeros({}, DType::i64)}};
    return graph_.add(std::move(n));
  }

  int simple_node(graph::Op op, const std::string& name, std::vector<int> inputs, graph::Attrs attrs) {
    graph::Node n;
    n.op = op;
    n.name = name;
    n.layer = layer_->index;
    n.attrs = std::move(attrs);
    n.inputs = std::move(inputs);
    return graph_.add(std::move(n));
  }

  // The reference's Conv block: conv (no bias, 'same' padding by default) → bn → act.
  int conv_block(const std::string& name, int input, int64_t c2, int64_t k, int64_t s, std::optional<int64_t> p,
                 int64_t g, graph::ActivationAttrs act) {
    int x = conv_node(name + ".conv", input, c2, k, s, p.value_or(k / 2), g, false);
    x = bn_node(name + ".bn", x);
    if (act.kind == graph::Activation::identity) return x;
    return simple_node(graph::Op::activation, name + ".act", {x}, act);
  }

  // ---- one config row ----------------------------------------------------------------------------
  int build_layer(const LayerSpec& layer) {
    const std::string& m = layer.module;
    const int in = input_node(layer.from[0]);
    if (m == "Conv") {
      const io::Value* p = arg(3);
      return conv_block(prefix(), in, width(int_arg(0, 0, "c2")), kernel_arg(1, 1), int_arg(2, 1, "s"),
                        p ? std::optional<int64_t>(int_arg(3, 0, "p")) : std::nullopt, int_arg(4, 1, "g"), activation_arg(5));
    }
    if (m == "Concat") {
      if (int_arg(0, 1, "dimension") != 1) fail("only Concat along channels (dimension 1) is supported");
      std::vector<int> inputs;
      int64_t channels = 0;
      for (int f : layer.from) {
        inputs.push_back(input_node(f));
        channels += channels_of(inputs.back());  // each input ≤ kMaxChannels: no overflow
        if (channels > graph::kMaxChannels)
          fail("the concat would have more than " + std::to_string(graph::kMaxChannels) + " channels");
      }
      return simple_node(graph::Op::concat, prefix(), inputs, graph::NoAttrs{});
    }
    if (m == "MP") {
      const int64_t k = int_arg(0, 2, "k");
      return simple_node(graph::Op::max_pool, prefix() + ".m", {in}, graph::PoolAttrs{k, k, 0});
    }
    if (m == "SP") {
      const int64_t k = int_arg(0, 3, "k"), s = int_arg(1, 1, "s");
      return simple_node(graph::Op::max_pool, prefix() + ".m", {in}, graph::PoolAttrs{k, s, k / 2});
    }
    if (m == "nn.Upsample") {
      const int64_t scale = int_arg(1, 0, "scale_factor");
      const io::Value* mode = arg(2);
      if (scale < 1 || (mode && mode->str != "nearest")) fail("only nearest upsampling by a positive integer factor is supported");
      return simple_node(graph::Op::upsample, prefix(), {in}, graph::UpsampleAttrs{scale});
    }
    if (m == "ReOrg") {  // YOLOv7-P6's space-to-depth: 4× the channels at half the size
      if (4 * channels_of(in) > graph::kMaxChannels) fail("the reorg would have more than " + std::to_string(graph::kMaxChannels) + " channels");
      return simple_node(graph::Op::reorg, prefix(), {in}, graph::NoAttrs{});
    }
    if (m == "SPPCSPC") return build_sppcspc(in, width(int_arg(0, 0, "c2")));
    if (m == "Bottleneck") return build_bottlenecks(in, width(int_arg(0, 0, "c2")), bool_arg(1, true, "shortcut"), int_arg(2, 1, "g"));
    if (m == "RepConv") return build_repconv(in, width(int_arg(0, 0, "c2")), int_arg(1, 3, "k"), int_arg(2, 1, "s"),
                                             arg(3) ? std::optional<int64_t>(int_arg(3, 0, "p")) : std::nullopt,
                                             int_arg(4, 1, "g"), activation_arg(5));
    if (m == "Detect" || m == "IDetect") return build_detect(m == "IDetect");
    fail("unknown module");
  }

  // CSP spatial pyramid pooling: cv1→cv3→cv4 → [x, pool5, pool9, pool13] → cv5→cv6, joined with cv2.
  int build_sppcspc(int in, int64_t c2) {
    const int64_t c_ = static_cast<int64_t>(2 * c2 * 0.5);
    const graph::ActivationAttrs silu;
    const std::string p = prefix();
    const int x1 = conv_block(p + ".cv4", conv_block(p + ".cv3", conv_block(p + ".cv1", in, c_, 1, 1, {}, 1, silu), c_, 3, 1, {}, 1, silu),
                              c_, 1, 1, {}, 1, silu);
    std::vector<int> pooled{x1};
    const int64_t kernels[3] = {5, 9, 13};
    for (int j = 0; j < 3; ++j)
      pooled.push_back(simple_node(graph::Op::max_pool, p + ".m." + std::to_string(j), {x1}, graph::PoolAttrs{kernels[j], 1, kernels[j] / 2}));
    const int cat = simple_node(graph::Op::concat, p + ".cat1", pooled, graph::NoAttrs{});
    const int y1 = conv_block(p + ".cv6", conv_block(p + ".cv5", cat, c_, 1, 1, {}, 1, silu), c_, 3, 1, {}, 1, silu);
    const int y2 = conv_block(p + ".cv2", in, c_, 1, 1, {}, 1, silu);
    const int cat2 = simple_node(graph::Op::concat, p + ".cat2", {y1, y2}, graph::NoAttrs{});
    return conv_block(p + ".cv7", cat2, c2, 1, 1, {}, 1, silu);
  }

  // Darknet's Bottleneck, `number` times in a row (tensors model.i.j.* when repeated, model.i.* when
  // not): cv1 1×1 to c2/2 channels, cv2 3×3 to c2, plus the block's input when shortcut is on and
  // the channel counts match — the residual add that couples channel spaces for pruning.
  int build_bottlenecks(int in, int64_t c2, bool shortcut, int64_t g) {
    const graph::ActivationAttrs silu;
    const int64_t hidden = c2 / 2;  // the reference's int(c2 · 0.5)
    int x = in;
    for (int j = 0; j < layer_->number; ++j) {
      const std::string p = layer_->number > 1 ? prefix() + "." + std::to_string(j) : prefix();
      const int y = conv_block(p + ".cv2", conv_block(p + ".cv1", x, hidden, 1, 1, {}, 1, silu), c2, 3, 1, {}, g, silu);
      x = shortcut && channels_of(x) == c2 ? simple_node(graph::Op::add, p + ".add", {x, y}, graph::NoAttrs{}) : y;
    }
    return x;
  }

  // RepConv: k×k conv-bn + 1×1 conv-bn (+ identity bn when shapes allow), summed, then act —
  // or, fused (deploy), one k×k conv with bias.
  int build_repconv(int in, int64_t c2, int64_t k, int64_t s, std::optional<int64_t> p, int64_t g, graph::ActivationAttrs act) {
    const int64_t c1 = channels_of(in);
    const int64_t pad = p.value_or(k / 2);
    const std::string pre = prefix();
    int sum_node;
    if (options_.repconv_deploy) {
      sum_node = conv_node(pre + ".rbr_reparam", in, c2, k, s, pad, g, true);
    } else {
      std::vector<int> branches;
      branches.push_back(bn_node(pre + ".rbr_dense.1", conv_node(pre + ".rbr_dense.0", in, c2, k, s, pad, g, false)));
      branches.push_back(bn_node(pre + ".rbr_1x1.1", conv_node(pre + ".rbr_1x1.0", in, c2, 1, s, pad - k / 2, g, false)));
      if (c1 == c2 && s == 1) branches.push_back(bn_node(pre + ".rbr_identity", in));
      sum_node = simple_node(graph::Op::add, pre + ".add", branches, graph::NoAttrs{});
    }
    if (act.kind == graph::Activation::identity) return sum_node;
    return simple_node(graph::Op::activation, pre + ".act", {sum_node}, act);
  }

  // Detect / IDetect: per level a 1×1 conv to na·(nc+5) channels (IDetect adds ImplicitA before and
  // ImplicitM after), then the detect node that reshapes and decodes.
  int build_detect(bool implicit) {
    const io::Value* nc_arg = arg(0);
    if (nc_arg && !(nc_arg->is(io::Value::Kind::string) && nc_arg->str == "nc") &&
        !(nc_arg->is(io::Value::Kind::integer) && nc_arg->integer == cfg_.nc))
      fail("argument 'nc' must be nc");
    if (layer_->from.size() != cfg_.anchors.size())
      fail("has " + std::to_string(layer_->from.size()) + " inputs but the config has " + std::to_string(cfg_.anchors.size()) +
           " anchor levels");
    const std::string pre = prefix();
    std::vector<int> levels;
    for (size_t j = 0; j < layer_->from.size(); ++j) {
      const std::string idx = std::to_string(j);
      int x = input_node(layer_->from[j]);
      if (implicit) x = implicit_node(graph::Op::implicit_add, pre + ".ia." + idx, x, channels_of(x), 0.0f);
      x = conv_node(pre + ".m." + idx, x, no(), 1, 1, 0, 1, true, /*fixed*/ true);
      if (implicit) x = implicit_node(graph::Op::implicit_mul, pre + ".im." + idx, x, no(), 1.0f);
      levels.push_back(x);
    }
    graph::Node d;
    d.op = graph::Op::detect;
    d.name = pre;
    d.inputs = levels;
    d.layer = layer_->index;
    d.attrs = graph::DetectAttrs{cfg_.nc, na_, {}};
    return graph_.add(std::move(d));
  }

  int implicit_node(graph::Op op, const std::string& name, int input, int64_t channels, float mean) {
    graph::Node n;
    n.op = op;
    n.name = name;
    n.inputs = {input};
    n.layer = layer_->index;
    n.tensors.emplace_back("implicit", Tensor::normal({1, channels, 1, 1}, mean, 0.02f, gen_).set_requires_grad());
    return graph_.add(std::move(n));
  }

  // Strides from the spatial sizes at a 256×256 input, anchors in grid units (as the reference
  // stores them after building) and pixels (anchor_grid), and the reference's bias priors.
  void finish_detect() {
    const int detect = graph_.detect_node();
    if (detect < 0) throw_error(cfg_.source, ": the config has no Detect or IDetect layer");
    graph::Node& d = graph_.nodes[detect];
    auto& attrs = d.get<graph::DetectAttrs>();
    const std::vector<Shape> shapes = graph_.infer_shapes(256, 256);
    const int64_t nl = static_cast<int64_t>(d.inputs.size());
    Tensor anchors = Tensor::empty({nl, na_, 2}), grid = Tensor::empty({nl, 1, na_, 1, 1, 2});
    for (int64_t l = 0; l < nl; ++l) {
      const float stride = 256.0f / static_cast<float>(shapes[d.inputs[l]][2]);
      attrs.strides.push_back(stride);
      for (int64_t a = 0; a < na_ * 2; ++a) {
        anchors.data<float>()[l * na_ * 2 + a] = cfg_.anchors[l][a] / stride;
        grid.data<float>()[l * na_ * 2 + a] = cfg_.anchors[l][a];
      }
      // obj: 8 objects per 640 image; cls: 0.6 / (nc − 0.99)
      graph::Node& head = graph_.nodes[graph_.nodes[d.inputs[l]].op == graph::Op::implicit_mul ? graph_.nodes[d.inputs[l]].inputs[0] : d.inputs[l]];
      float* b = head.tensor("bias").data<float>();
      const int64_t per = cfg_.nc + 5;
      for (int64_t a = 0; a < na_; ++a) {
        b[a * per + 4] += std::log(8.0f / ((640.0f / stride) * (640.0f / stride)));
        for (int64_t c = 5; c < per; ++c) b[a * per + c] += std::log(0.6f / (static_cast<float>(cfg_.nc) - 0.99f));
      }
    }
    d.tensors = {{"anchors", anchors}, {"anchor_grid", grid}};
  }

  const ModelConfig& cfg_;
  BuildOptions options_;
  Generator gen_;
  int64_t na_;
  int64_t parameters_ = 0;  // conv weights so far (batch norms and implicits are small beside them)
  graph::Graph graph_;
  const LayerSpec* layer_ = nullptr;
};

}  // namespace detail

inline YoloModel build_yolo(const ModelConfig& cfg, const BuildOptions& options = BuildOptions()) {
  YoloModel model{detail::YoloBuilder(cfg, options).build(), {}, cfg};
  graph::validate(model.graph);
  return model;
}

}  // namespace pdyolo::models
