// Channel spaces: how each node's tensors index channels (each op's row in graph/ops.hpp), a check that every
// count agrees with the tensors' shapes, and the coupled channel groups structured pruning removes
// channels from.
//
//   a channel space   the channels one node creates: the image input, or a conv's output
//                     (weight.shape[0] of them). Every other node only passes channels on:
//   passthrough       output channel c is input channel c (bn, activation, pool, upsample, implicit)
//   coupled           add: channel c of every input is the same channel (a residual, RepConv's branches)
//   concat            the inputs' channels end to end, input j from Σ_{i<j} channels(i) on
//   space_to_depth    reorg: its input's channels four times, once per 2×2 phase (as a concat of
//                     four copies: pruning input channel c removes output channels c, C+c, 2C+c, 3C+c)
//   sink              detect: reads its inputs, creates nothing
//
// A channel group is the union of the spaces an add couples, with every tensor axis that indexes
// it and where group channel k sits on that axis (through concat offsets). Removing channel k of a
// group means removing position index[k] from each of those axes — nothing else in the graph holds
// a channel count, so the counts follow. A group that holds a fixed space (the image, detection
// maps) cannot be pruned.
#pragma once
#include <algorithm>
#include <map>
#include <numeric>
#include <sstream>
#include <tuple>

#include "pdyolo/graph/graph.hpp"

namespace pdyolo::graph {

// What node n does with channels: its op's rule and the tensor axes that index them (graph/ops.hpp).
struct ChannelDecl {
  ChannelRule rule;
  std::vector<ChannelAxis> axes;
};
inline ChannelDecl declare_channels(const Node& n) { return {describe(n.op).channel_rule, describe(n.op).channel_axes(n)}; }

// ---- validate ---------------------------------------------------------------------------------

namespace detail {
[[noreturn]] inline void invalid(const Node& n, const std::string& what) {
  throw_error("graph: node '", n.name, "' (", op_name(n.op), "): ", what);
}
inline std::string count_str(int64_t n) { return std::to_string(n); }
inline int64_t bounded_channels(const Node& n, int64_t c) {
  if (c < 1 || c > kMaxChannels)
    invalid(n, "has " + count_str(c) + " channels; a node has between 1 and " + count_str(kMaxChannels));
  return c;
}
}  // namespace detail

namespace detail {
// Checks every attribute of n against the range its struct declares (graph/node.hpp).
class AttributeChecker {
 public:
  explicit AttributeChecker(const Node& n) : node_(n) {}
  void integer(const char* name, int64_t v, int64_t low) const {
    if (v < low || v > kMaxAttribute)
      invalid(node_, std::string("attribute '") + name + "' is " + std::to_string(v) + "; it must lie in [" + std::to_string(low) + ", " +
                         std::to_string(kMaxAttribute) + "]");
  }
  void real(const char*, float) const {}
  void activation(const char*, Activation) const {}
  void positive_reals(const char* name, const std::vector<float>& values) const {
    for (float v : values)
      if (!(v > 0.0f)) invalid(node_, std::string("attribute '") + name + "' must hold positive numbers");
  }

 private:
  const Node& node_;
};

inline void check_attributes(const Node& n) {
  if (n.attrs.index() != describe(n.op).default_attrs().index()) invalid(n, "has no " + std::string(op_name(n.op)) + " attributes");
  std::visit([&](const auto& attrs) {
    AttributeChecker checker(n);
    attrs.fields(attrs, checker);
  }, n.attrs);
}
}  // namespace detail

// Checks the graph before anything runs it: inputs precede their readers, every op has the inputs,
// attributes (in their declared ranges) and tensors it needs, and every channel count agrees — each
// declared tensor axis against the channels it indexes, and whatever its op's row checks (a conv's
// weight against its input and kernel, add's inputs against each other, the detect head against nc
// and its anchors). Names the node and both numbers on a mismatch.
inline void validate(const Graph& g) {
  PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == Op::input, "graph: the first node must be the image input");
  // Channel counts in graph order, each read once (Graph::channels recurses through concats, which
  // an untrusted file could nest into an exponential walk); bounded so no sum can overflow.
  std::vector<int64_t> count(g.nodes.size(), 0);
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const OpDesc& op = describe(n.op);
    for (int in : n.inputs) {
      if (in < 0 || in >= static_cast<int>(i)) detail::invalid(n, "reads node " + std::to_string(in) + ", which does not precede it");
      if (g.nodes[in].op == Op::detect) detail::invalid(n, "reads the detect node '" + g.nodes[in].name + "', whose output is no feature map");
    }
    const int64_t inputs = static_cast<int64_t>(n.inputs.size());
    if (inputs < op.min_inputs) detail::invalid(n, op.min_inputs == 1 ? "has no input" : "needs " + std::to_string(op.min_inputs) + " inputs");
    if (op.max_inputs != kUnboundedInputs && inputs > op.max_inputs)
      detail::invalid(n, "reads " + std::to_string(inputs) + " inputs; it takes " + std::to_string(op.max_inputs));
    detail::check_attributes(n);
    std::vector<const Node*> input_nodes;
    std::vector<int64_t> input_channels;
    for (int in : n.inputs) input_nodes.push_back(&g.nodes[in]), input_channels.push_back(count[in]);
    if (const std::string problem = op.check(n, input_nodes, input_channels); !problem.empty()) detail::invalid(n, problem);
    if (op.channel_rule != ChannelRule::sink) {
      // Summed one input at a time so that no partial sum passes the bound (inputs are ≤ kMaxChannels).
      int64_t channels = 0;
      if (op.channel_rule == ChannelRule::concat)
        for (int64_t c : input_channels) channels = detail::bounded_channels(n, channels + c);
      else channels = output_channels(n, input_channels);
      count[i] = detail::bounded_channels(n, channels);
    }
    const int64_t in_channels = input_channels.empty() ? 0 : input_channels[0], out_channels = count[i];
    for (const ChannelAxis& a : op.channel_axes(n)) {
      if (!n.has_tensor(a.tensor)) detail::invalid(n, std::string("has no tensor '") + a.tensor + "'");
      const Tensor& t = n.tensor(a.tensor);
      const int64_t expected = a.side == ChannelSide::output ? out_channels : in_channels;
      if (t.dim() <= a.axis || t.shape()[a.axis] != expected)
        detail::invalid(n, std::string("tensor '") + a.tensor + "' " + shape_str(t.shape()) + " should have " +
                               detail::count_str(expected) + " channels on axis " + std::to_string(a.axis) + " (" +
                               (a.side == ChannelSide::output ? "its output" : "its input '" + g.nodes[n.inputs[0]].name + "'") + ")");
    }
  }
}

// ---- channel groups ---------------------------------------------------------------------------

struct ChannelSpace {
  int node = -1;       // the node creating it (the input or a conv)
  int64_t size = 0;
  bool fixed = false;  // the image's channels or detection maps
};

// One tensor axis indexing a group: group channel k is position index[k] on it (−1: not on it). An
// axis that reads a channel several times (through a concat) appears once per repetition.
struct ChannelUse {
  int node = -1;
  std::string tensor;
  int axis = 0;
  std::vector<int64_t> index;
};

struct ChannelGroup {
  std::vector<int> spaces;  // ids into ChannelGroups::spaces, in graph order
  int64_t channels = 0;     // independent channels: pruning removes them one at a time
  bool prunable = true;
  std::vector<ChannelUse> uses;
};

struct ChannelGroups {
  std::vector<ChannelSpace> spaces;
  std::vector<ChannelGroup> groups;
  std::vector<int> group_of_space;

  // "64 ch: model.1.conv + model.2.cv2.conv (9 tensor axes)" — one group per line.
  std::string describe(const Graph& g) const {
    std::ostringstream out;
    for (size_t k = 0; k < groups.size(); ++k) {
      const ChannelGroup& group = groups[k];
      out << "group " << k << ": " << group.channels << " ch" << (group.prunable ? "" : " (fixed)") << ": ";
      for (size_t s = 0; s < group.spaces.size(); ++s) out << (s ? " + " : "") << g.nodes[spaces[group.spaces[s]].node].name;
      out << " (" << group.uses.size() << " tensor axes)\n";
    }
    return out.str();
  }
};

namespace detail {

// Union-find over single channels.
class ChannelUnion {
 public:
  int make() {
    parent_.push_back(static_cast<int>(parent_.size()));
    return parent_.back();
  }
  int find(int x) {
    while (parent_[x] != x) x = parent_[x] = parent_[parent_[x]];
    return x;
  }
  void join(int a, int b) {
    a = find(a), b = find(b);
    if (a != b) parent_[std::max(a, b)] = std::min(a, b);  // the earlier channel stays the root
  }

 private:
  std::vector<int> parent_;
};

}  // namespace detail

// The coupled channel groups of g (validate(g) first): every channel of every node's output is
// traced to the space it belongs to, an add joins its inputs' channels one by one, and the groups
// are the connected spaces, each with every tensor axis that indexes it.
inline ChannelGroups channel_groups(const Graph& g) {
  ChannelGroups result;
  detail::ChannelUnion channels;          // one element per channel of every space
  std::vector<int> space_of;              // element → space
  std::vector<std::vector<int>> value(g.nodes.size());  // node → its output's channels (elements)
  struct PendingUse {
    int node;
    const char* tensor;
    int axis;
    std::vector<int> elements;  // element at each position on the axis
  };
  std::vector<PendingUse> pending;
  std::vector<bool> forced_fixed;         // space → coupled to something unprunable
  std::vector<int> first_element;         // space → its channel 0 (a space's channels are consecutive)

  auto new_space = [&](int node, int64_t size, bool fixed) {
    const int id = static_cast<int>(result.spaces.size());
    result.spaces.push_back({node, size, fixed});
    forced_fixed.push_back(fixed);
    first_element.push_back(static_cast<int>(space_of.size()));
    std::vector<int> elements;
    for (int64_t c = 0; c < size; ++c) {
      elements.push_back(channels.make());
      space_of.push_back(id);
    }
    return elements;
  };

  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    const ChannelDecl decl = declare_channels(n);
    const std::vector<int> none;
    const std::vector<int>& in = n.inputs.empty() ? none : value[n.inputs[0]];
    switch (decl.rule) {
      case ChannelRule::source: value[i] = new_space(static_cast<int>(i), g.channels(static_cast<int>(i)), true); break;
      case ChannelRule::produce: {
        value[i] = new_space(static_cast<int>(i), g.channels(static_cast<int>(i)), n.fixed_channels);
        const int64_t groups = n.get<ConvAttrs>().groups;
        if (groups > 1 && groups == static_cast<int64_t>(in.size()) && groups == static_cast<int64_t>(value[i].size())) {
          for (size_t c = 0; c < in.size(); ++c) channels.join(in[c], value[i][c]);  // depthwise: channel c reads channel c
        } else if (groups > 1) {
          forced_fixed[space_of[value[i][0]]] = true;  // grouped: channels are tied within groups
          forced_fixed[space_of[in.at(0)]] = true;
        }
        break;
      }
      case ChannelRule::passthrough: value[i] = in; break;
      case ChannelRule::coupled:
        value[i] = in;
        for (int j : n.inputs)
          for (size_t c = 0; c < in.size(); ++c) channels.join(in[c], value[j].at(c));
        break;
      case ChannelRule::concat:
        for (int j : n.inputs) value[i].insert(value[i].end(), value[j].begin(), value[j].end());
        break;
      case ChannelRule::space_to_depth:  // output channel k·C + c is input channel c, for each phase k
        for (int phase = 0; phase < 4; ++phase) value[i].insert(value[i].end(), in.begin(), in.end());
        break;
      case ChannelRule::sink: break;
    }
    for (const ChannelAxis& a : decl.axes)
      pending.push_back({static_cast<int>(i), a.tensor, a.axis, a.side == ChannelSide::output ? value[i] : in});
  }

  // Groups: spaces that share a channel, numbered in graph order; group channel k = the k-th
  // distinct channel met walking the group's spaces in order.
  const int space_count = static_cast<int>(result.spaces.size());
  detail::ChannelUnion linked_spaces;
  for (int s = 0; s < space_count; ++s) linked_spaces.make();
  for (int e = 0; e < static_cast<int>(space_of.size()); ++e) linked_spaces.join(space_of[e], space_of[channels.find(e)]);
  std::vector<int> group_of_root_space(space_count, -1);
  result.group_of_space.assign(space_count, -1);
  for (int s = 0; s < space_count; ++s) {
    int& group = group_of_root_space[linked_spaces.find(s)];
    if (group < 0) {
      group = static_cast<int>(result.groups.size());
      result.groups.emplace_back();
    }
    result.group_of_space[s] = group;
    result.groups[group].spaces.push_back(s);
    result.groups[group].prunable = result.groups[group].prunable && !forced_fixed[s];
  }
  std::vector<int64_t> root_channel(space_of.size(), -1);  // channel root → its index in the group
  for (ChannelGroup& group : result.groups)
    for (int s : group.spaces)
      for (int e = first_element[s]; e < first_element[s] + result.spaces[s].size; ++e)
        if (root_channel[channels.find(e)] < 0) root_channel[channels.find(e)] = group.channels++;
  auto group_of = [&](int element) { return result.group_of_space[space_of[element]]; };
  for (const PendingUse& use : pending) {
    if (use.elements.empty()) continue;
    // An axis may span several groups (a conv reading a concat): one use per group it touches.
    std::vector<int> touched;
    for (int e : use.elements) {
      const int group = group_of(e);
      if (std::find(touched.begin(), touched.end(), group) == touched.end()) touched.push_back(group);
    }
    for (int group : touched) {
      // A channel read more than once on one axis (SPP's concat of a map and its pools) gives one
      // use per repetition, so each use maps a group channel to a single position.
      std::vector<ChannelUse> repeats;
      std::vector<int> seen(result.groups[group].channels, 0);
      for (size_t p = 0; p < use.elements.size(); ++p) {
        if (group_of(use.elements[p]) != group) continue;
        const int64_t k = root_channel[channels.find(use.elements[p])];
        const int r = seen[k]++;
        if (r == static_cast<int>(repeats.size()))
          repeats.push_back({use.node, use.tensor, use.axis, std::vector<int64_t>(result.groups[group].channels, -1)});
        repeats[r].index[k] = static_cast<int64_t>(p);
      }
      for (ChannelUse& u : repeats) result.groups[group].uses.push_back(std::move(u));
    }
  }
  return result;
}

// ---- surgery ------------------------------------------------------------------------------------

namespace detail {
// t with only `positions` kept along `axis` (f32; every channel-indexed tensor is).
inline Tensor keep_along(const Tensor& t, int axis, const std::vector<int64_t>& positions) {
  PDYOLO_CHECK(t.dtype() == DType::f32, "keep_channels: a channel-indexed tensor must be f32, got ", dtype_name(t.dtype()));
  const Tensor src = contiguous_copy(t.detach());
  Shape shape = src.shape();
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; ++d) outer *= shape[d];
  for (int d = axis + 1; d < static_cast<int>(shape.size()); ++d) inner *= shape[d];
  const int64_t extent = shape[axis];
  shape[axis] = static_cast<int64_t>(positions.size());
  Tensor out = Tensor::empty(shape);
  const float* from = src.data<float>();
  float* to = out.data<float>();
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p : positions) to = std::copy_n(from + (o * extent + p) * inner, inner, to);
  if (t.requires_grad()) out.set_requires_grad();
  return out;
}
}  // namespace detail

// Keeps the group channels `keep` (ascending, at least one) of a prunable group and removes every
// other channel of it from each tensor axis that indexes it (implicit adds on removed channels are
// folded into their consumers' biases first, see fold_removed_implicits). Channel counts follow from the tensors,
// so the graph is consistent afterwards (validate() checks); other groups' positions may have moved,
// so take channel_groups(g) afresh before the next removal.
namespace detail {
// An implicit add on a removed channel c adds a_c to what its consumers read, though the channel
// itself is silenced: each consumer (a 1×1 conv without padding, as IDetect's head convs are) gets
// Σ_c W[:, c]·a_c in its bias, so the outputs stay what they were with the channel silenced.
inline void fold_removed_implicits(Graph& g, const ChannelGroup& group, const std::vector<bool>& kept) {
  for (const ChannelUse& u : group.uses) {
    if (g.nodes[u.node].op != Op::implicit_add) continue;
    const std::vector<float> a = g.nodes[u.node].tensor("implicit").to_vector();  // [1, C, 1, 1]
    for (size_t j = static_cast<size_t>(u.node) + 1; j < g.nodes.size(); ++j) {
      Node& consumer = g.nodes[j];
      if (std::find(consumer.inputs.begin(), consumer.inputs.end(), u.node) == consumer.inputs.end()) continue;
      const bool foldable = consumer.op == Op::conv && consumer.get<ConvAttrs>().kernel == 1 && consumer.get<ConvAttrs>().padding == 0 &&
                            consumer.get<ConvAttrs>().groups == 1 && consumer.has_tensor("bias");
      PDYOLO_CHECK(foldable, "keep_channels: the implicit add '", g.nodes[u.node].name, "' feeds '", consumer.name,
                   "', which is not a 1x1 conv with a bias: its removed channels cannot be folded");
      const Tensor w = contiguous_copy(consumer.tensor("weight"));  // [OC, IC, 1, 1]
      const int64_t oc = w.shape()[0], ic = w.shape()[1];
      Tensor bias = contiguous_copy(consumer.tensor("bias"));
      for (size_t k = 0; k < u.index.size(); ++k) {
        if (kept[k] || u.index[k] < 0) continue;
        const int64_t c = u.index[k];
        for (int64_t o = 0; o < oc; ++o) bias.data<float>()[o] += w.data<float>()[o * ic + c] * a[static_cast<size_t>(c)];
      }
      if (consumer.tensor("bias").requires_grad()) bias.set_requires_grad();
      consumer.tensor("bias") = bias;
    }
  }
}
}  // namespace detail

inline void keep_channels(Graph& g, const ChannelGroup& group, const std::vector<int64_t>& keep) {
  PDYOLO_CHECK(group.prunable, "keep_channels: the group holds channels with a fixed meaning (image or detection maps)");
  PDYOLO_CHECK(!keep.empty(), "keep_channels: at least one channel must stay");
  std::vector<bool> kept(static_cast<size_t>(group.channels), false);
  for (size_t i = 0; i < keep.size(); ++i) {
    PDYOLO_CHECK(keep[i] >= 0 && keep[i] < group.channels && (i == 0 || keep[i] > keep[i - 1]), "keep_channels: channel ", keep[i],
                 " is out of order or outside the group's ", group.channels);
    kept[static_cast<size_t>(keep[i])] = true;
  }
  detail::fold_removed_implicits(g, group, kept);
  // Positions to drop, per tensor axis (an axis may carry several uses: repeated reads).
  std::map<std::tuple<int, std::string, int>, std::vector<bool>> dropped;
  for (const ChannelUse& u : group.uses) {
    const Tensor& t = g.nodes[u.node].tensor(u.tensor);
    auto& drop = dropped.try_emplace({u.node, u.tensor, u.axis}, static_cast<size_t>(t.shape()[u.axis]), false).first->second;
    for (size_t k = 0; k < u.index.size(); ++k)
      if (!kept[k] && u.index[k] >= 0) drop[static_cast<size_t>(u.index[k])] = true;
  }
  for (const auto& [where, drop] : dropped) {
    const auto& [node, tensor, axis] = where;
    std::vector<int64_t> positions;
    for (size_t p = 0; p < drop.size(); ++p)
      if (!drop[p]) positions.push_back(static_cast<int64_t>(p));
    Tensor& t = g.nodes[node].tensor(tensor);
    t = detail::keep_along(t, axis, positions);
  }
  for (const ChannelUse& u : group.uses) {  // a depthwise conv keeps one group per channel
    Node& n = g.nodes[u.node];
    if (n.op == Op::conv && n.get<ConvAttrs>().groups > 1) n.get<ConvAttrs>().groups = n.tensor("weight").shape()[0];
  }
}

}  // namespace pdyolo::graph
