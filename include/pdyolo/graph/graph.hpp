// The model as an explicit DAG of primitive nodes (graph/node.hpp). Every node carries its op kind,
// typed attributes, its inputs by node index and the tensors it owns (under their checkpoint names).
// What each op is — its shape, FLOPs, channel rule — is its row in the op table (graph/ops.hpp).
// Channel counts have one source: the tensors' shapes (a conv's weight [OC, IC/groups, KH, KW]),
// from which every other node's count follows by its op's channel rule (Graph::channels).
// validate() and the coupled channel groups pruning needs are in graph/channels.hpp.
// Fusing, pruning, quantizing and exporting are passes over this graph; running it calls the
// autograd ops.
#pragma once
#include <map>
#include <string>
#include <vector>

#include "pdyolo/graph/ops.hpp"
#include "pdyolo/ops/shape.hpp"

namespace pdyolo::graph {

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
  // Output channels of node i, derived from the tensors' shapes by its op's channel rule (graph/ops.hpp):
  // the image's count for the input, a conv's weight.shape[0], the sum over a concat's inputs, four
  // times a reorg's input, 0 for detect, else its first input's.
  int64_t channels(int i) const {
    for (;;) {
      const Node& n = nodes.at(static_cast<size_t>(i));
      switch (describe(n.op).channel_rule) {
        case ChannelRule::source:
        case ChannelRule::produce:
        case ChannelRule::sink: return output_channels(n, {});  // (from the node alone: no walk up the graph)
        case ChannelRule::concat:
        case ChannelRule::space_to_depth: {
          std::vector<int64_t> in;
          for (int j : n.inputs) in.push_back(channels(j));
          return output_channels(n, in);
        }
        case ChannelRule::passthrough:
        case ChannelRule::coupled:
          PDYOLO_CHECK(!n.inputs.empty(), "graph: node '", n.name, "' (", op_name(n.op), ") has no input");
          i = n.inputs[0];  // (a loop, not recursion: chains of passthrough nodes are long)
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

  // Output shape of every node for a [1, C, height, width] input (no data is computed), by each op's
  // shape rule (graph/ops.hpp).
  std::vector<Shape> infer_shapes(int64_t height, int64_t width) const {
    std::vector<Shape> shapes(nodes.size());
    for (size_t i = 0; i < nodes.size(); ++i) {
      const Node& n = nodes[i];
      if (n.op == Op::input) {
        shapes[i] = {1, n.get<InputAttrs>().channels, height, width};
        continue;
      }
      std::vector<Shape> in;
      for (int j : n.inputs) in.push_back(shapes[static_cast<size_t>(j)]);
      shapes[i] = describe(n.op).shape(n, in, channels(static_cast<int>(i)));
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
  // 2 × the multiply-adds of node i given the output shapes of infer_shapes (its op's FLOPs rule:
  // convolutions count, every other op is 0). The one FLOPs formula: info, the profilers and the
  // benchmarks all count with it.
  double node_flops(size_t i, const std::vector<Shape>& shapes) const { return describe(nodes[i].op).flops(nodes[i], shapes[i]); }

 private:
  bool training_ = true;
};

}  // namespace pdyolo::graph
