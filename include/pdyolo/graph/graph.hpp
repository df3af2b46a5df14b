// The model as an explicit DAG of primitive nodes. Every node carries its op kind, typed
// attributes, its inputs by node index and the tensors it owns (under their checkpoint names).
// Channel counts have one source: the tensors' shapes (a conv's weight [OC, IC/groups, KH, KW]),
// from which every other node's count follows (Graph::channels). How each op's tensors index
// channels, validate() and the coupled channel groups pruning needs are in graph/channels.hpp.
// Fusing, pruning, quantizing and exporting are passes over this graph; running it calls the
// autograd ops.
#pragma once
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/nn/module.hpp"
#include "pdyolo/ops/shape.hpp"

namespace pdyolo::graph {

// The most channels one node may have (real detectors stay below 4096); validate() and the config
// builder refuse more, so channel sums cannot overflow and files cannot ask for absurd tensors.
inline constexpr int64_t kMaxChannels = int64_t{1} << 16;

enum class Op { input, conv, batch_norm, activation, add, concat, max_pool, upsample, implicit_add, implicit_mul, detect };

using pdyolo::Activation;  // identity, silu, leaky_relu, relu (kernels/activation.hpp)

struct InputAttrs {
  int64_t channels = 3;  // of the image
};
// The channel counts are the weight's: [out_channels, in_channels / groups, kernel, kernel].
struct ConvAttrs {
  int64_t kernel = 1, stride = 1, padding = 0, groups = 1;
};
struct BatchNormAttrs {
  float eps = 1e-3f, momentum = 0.03f;
};
struct ActivationAttrs {
  Activation kind = Activation::silu;
  float slope = 0.1f;  // leaky_relu
};
struct PoolAttrs {
  int64_t kernel = 2, stride = 2, padding = 0;
};
struct UpsampleAttrs {
  int64_t scale = 2;
};
struct DetectAttrs {
  int64_t nc = 80, na = 3;
  std::vector<float> strides;  // per level, pixels per cell
  int64_t outputs_per_anchor() const { return nc + 5; }
};
using Attrs = std::variant<std::monostate, InputAttrs, ConvAttrs, BatchNormAttrs, ActivationAttrs, PoolAttrs, UpsampleAttrs, DetectAttrs>;

struct Node {
  Op op = Op::input;
  std::string name;                // prefix of its tensors: "model.3.conv" → "model.3.conv.weight"
  std::vector<int> inputs;         // producer node indices
  int layer = -1;                  // the config row it belongs to
  bool fixed_channels = false;     // its output channels have a fixed meaning (detection maps): never pruned
  Attrs attrs;
  nn::NamedTensors tensors;        // parameters (requires_grad) and buffers, in checkpoint order

  template <class T> T& get() { return std::get<T>(attrs); }
  template <class T> const T& get() const { return std::get<T>(attrs); }
  Tensor& tensor(const std::string& local) {
    for (auto& [n, t] : tensors)
      if (n == local) return t;
    throw_error("graph node '", name, "' has no tensor '", local, "'");
  }
  const Tensor& tensor(const std::string& local) const { return const_cast<Node*>(this)->tensor(local); }
  bool has_tensor(const std::string& local) const {
    for (auto& [n, t] : tensors)
      if (n == local) return true;
    return false;
  }
};

inline const char* op_name(Op op) {
  switch (op) {
    case Op::input: return "input";
    case Op::conv: return "conv";
    case Op::batch_norm: return "batch_norm";
    case Op::activation: return "activation";
    case Op::add: return "add";
    case Op::concat: return "concat";
    case Op::max_pool: return "max_pool";
    case Op::upsample: return "upsample";
    case Op::implicit_add: return "implicit_add";
    case Op::implicit_mul: return "implicit_mul";
    case Op::detect: return "detect";
  }
  return "?";
}

// What a detection model returns: raw maps per level [N, na, H, W, no] (pre-sigmoid), and in
// eval mode the decoded boxes [N, Σ na·H·W, no]: x, y, w, h in input pixels, then sigmoid scores.
struct DetectOutput {
  std::vector<Tensor> raw;
  Tensor decoded;
};

class Graph {
 public:
  std::vector<Node> nodes;        // in execution order; nodes[0] is the image input
  std::vector<int> layer_output;  // config row → the node producing that row's output

  int add(Node node) {
    for (int in : node.inputs)
      PDYOLO_CHECK(in >= 0 && in < static_cast<int>(nodes.size()), "graph: node '", node.name, "' reads node ", in,
                   " which does not precede it");
    nodes.push_back(std::move(node));
    return static_cast<int>(nodes.size()) - 1;
  }
  // Output channels of node i, derived from the tensors' shapes: the image's count for the input, a
  // conv's weight.shape[0], the sum over a concat's inputs, 0 for detect, else its first input's.
  int64_t channels(int i) const {
    for (;;) {
      const Node& n = nodes.at(static_cast<size_t>(i));
      switch (n.op) {
        case Op::input: return n.get<InputAttrs>().channels;
        case Op::conv: return n.tensor("weight").shape().at(0);
        case Op::detect: return 0;
        case Op::concat: {
          int64_t sum = 0;
          for (int j : n.inputs) sum += channels(j);
          return sum;
        }
        default:
          PDYOLO_CHECK(!n.inputs.empty(), "graph: node '", n.name, "' (", op_name(n.op), ") has no input");
          i = n.inputs[0];
      }
    }
  }
  // Input channels a conv reads: weight [OC, IC/groups, KH, KW] → IC.
  static int64_t conv_in_channels(const Node& conv) {
    return conv.tensor("weight").shape().at(1) * conv.get<ConvAttrs>().groups;
  }

  int detect_node() const {
    for (int i = static_cast<int>(nodes.size()) - 1; i >= 0; --i)
      if (nodes[i].op == Op::detect) return i;
    return -1;
  }

  // ---- tensors under their checkpoint names ---------------------------------------------------
  nn::NamedTensors named_tensors(bool parameters) const {
    nn::NamedTensors out;
    for (const Node& n : nodes)
      for (const auto& [local, t] : n.tensors)
        if (t.requires_grad() == parameters) out.emplace_back(n.name + "." + local, t);
    return out;
  }
  nn::NamedTensors named_parameters() const { return named_tensors(true); }
  nn::NamedTensors named_buffers() const { return named_tensors(false); }
  std::vector<Tensor> parameters() const { return nn::tensors_of(named_parameters()); }
  int64_t parameter_count() const { return nn::element_count(named_parameters()); }
  std::map<std::string, Tensor> state_dict() const {
    std::map<std::string, Tensor> out;
    for (const Node& n : nodes)
      for (const auto& [local, t] : n.tensors) out[n.name + "." + local] = t;
    return out;
  }
  void load_state_dict(const std::map<std::string, Tensor>& values, bool strict = true,
                       const std::string& source = "load_state_dict") {
    nn::load_named_tensors(state_dict(), values, strict, source);
  }

  // A deep copy: the same nodes with their tensors copied (parameters stay parameters). What an
  // EMA or a teacher copy is made from: no config is needed, so a pruned graph copies as well.
  Graph clone() const {
    Graph copy = *this;
    for (Node& n : copy.nodes)
      for (auto& [local, t] : n.tensors) {
        const bool parameter = t.requires_grad();
        t = t.detach().clone();
        if (parameter) t.set_requires_grad();
      }
    return copy;
  }

  void train(bool on = true) { training_ = on; }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Running the graph: graph::forward and graph::Executor (graph/executor.hpp).

  // Output shape of every node for a [1, C, size, size] input (no data is computed).
  std::vector<Shape> infer_shapes(int64_t height, int64_t width) const {
    std::vector<Shape> shapes(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Node& n = nodes[i];
      if (n.op == Op::input) {
        shapes[i] = {1, n.get<InputAttrs>().channels, height, width};
        continue;
      }
      const Shape& in = shapes[n.inputs.empty() ? 0 : n.inputs[0]];
      switch (n.op) {
        case Op::conv: {
          const auto& c = n.get<ConvAttrs>();
          shapes[i] = {1, channels(static_cast<int>(i)), (in[2] + 2 * c.padding - c.kernel) / c.stride + 1,
                       (in[3] + 2 * c.padding - c.kernel) / c.stride + 1};
          break;
        }
        case Op::max_pool: {
          const auto& p = n.get<PoolAttrs>();
          shapes[i] = {1, in[1], (in[2] + 2 * p.padding - p.kernel) / p.stride + 1, (in[3] + 2 * p.padding - p.kernel) / p.stride + 1};
          break;
        }
        case Op::upsample: {
          const int64_t s = n.get<UpsampleAttrs>().scale;
          shapes[i] = {1, in[1], in[2] * s, in[3] * s};
          break;
        }
        case Op::concat: {
          shapes[i] = in;
          shapes[i][1] = 0;
          for (int j : n.inputs) shapes[i][1] += shapes[j][1];
          break;
        }
        case Op::detect: shapes[i] = {}; break;
        default: shapes[i] = in;
      }
    }
    return shapes;
  }

  // 2 × the multiply-adds of every convolution for a square input of `size` (the reference's GFLOPs).
  double conv_flops(int64_t size) const {
    const std::vector<Shape> shapes = infer_shapes(size, size);
    double flops = 0.0;
    for (size_t i = 0; i < nodes.size(); ++i) flops += node_flops(i, shapes);
    return flops;
  }
  // 2 × the multiply-adds of node i (convolutions; 0 for every other op), given the output shapes of
  // infer_shapes: each output element of a conv takes IC/groups · KH · KW of them. The one FLOPs
  // formula: info, the profilers and the benchmarks all count with it.
  double node_flops(size_t i, const std::vector<Shape>& shapes) const {
    if (nodes[i].op != Op::conv) return 0.0;
    const Shape& w = nodes[i].tensor("weight").shape();
    return 2.0 * static_cast<double>(shape_numel(shapes[i])) * static_cast<double>(w[1] * w[2] * w[3]);
  }

 private:
  bool training_ = true;
};

}  // namespace pdyolo::graph
