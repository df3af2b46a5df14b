// Channel spaces: how each node's tensors index channels (declared once per op), a check that every
// count agrees with the tensors' shapes, and the coupled channel groups structured pruning removes
// channels from.
//
//   a channel space   the channels one node creates: the image input, or a conv's output
//                     (weight.shape[0] of them). Every other node only passes channels on:
//   passthrough       output channel c is input channel c (bn, activation, pool, upsample, implicit)
//   coupled           add: channel c of every input is the same channel (a residual, RepConv's branches)
//   concat            the inputs' channels end to end, input j from Σ_{i<j} channels(i) on
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

enum class ChannelRule { source, produce, passthrough, coupled, concat, sink };

inline const char* channel_rule_name(ChannelRule r) {
  switch (r) {
    case ChannelRule::source: return "source";
    case ChannelRule::produce: return "produce";
    case ChannelRule::passthrough: return "passthrough";
    case ChannelRule::coupled: return "coupled";
    case ChannelRule::concat: return "concat";
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

struct ChannelDecl {
  ChannelRule rule;
  std::vector<ChannelAxis> axes;  // every tensor axis of the node that indexes channels
};

// The declaration table: what each op does with channels. A grouped conv's weight axis 1 indexes
// channels within a group only, so it is not listed; channel_groups couples a depthwise conv's
// input and output instead and marks other grouped convs unprunable.
inline ChannelDecl declare_channels(const Node& n) {
  constexpr ChannelSide out = ChannelSide::output, in = ChannelSide::input;
  switch (n.op) {
    case Op::input: return {ChannelRule::source, {}};
    case Op::conv: {
      ChannelDecl d{ChannelRule::produce, {{"weight", 0, out}}};
      if (n.get<ConvAttrs>().groups == 1) d.axes.push_back({"weight", 1, in});
      if (n.has_tensor("bias")) d.axes.push_back({"bias", 0, out});
      return d;
    }
    case Op::batch_norm:
      return {ChannelRule::passthrough, {{"weight", 0, in}, {"bias", 0, in}, {"running_mean", 0, in}, {"running_var", 0, in}}};
    case Op::implicit_add:
    case Op::implicit_mul: return {ChannelRule::passthrough, {{"implicit", 1, in}}};  // [1, C, 1, 1]
    case Op::activation:
    case Op::max_pool:
    case Op::upsample: return {ChannelRule::passthrough, {}};
    case Op::add: return {ChannelRule::coupled, {}};
    case Op::concat: return {ChannelRule::concat, {}};
    case Op::detect: return {ChannelRule::sink, {}};
  }
  throw_error("graph: node '", n.name, "' has an unknown op");
}

// ---- validate ---------------------------------------------------------------------------------

namespace detail {
[[noreturn]] inline void invalid(const Node& n, const std::string& what) {
  throw_error("graph: node '", n.name, "' (", op_name(n.op), "): ", what);
}
inline std::string count_str(int64_t n) { return std::to_string(n); }
}  // namespace detail

// Checks the graph before anything runs it: inputs precede their readers, every op has the tensors
// and attributes it needs, and every channel count agrees — each declared tensor axis against the
// channels it indexes, a conv's kernel against its weight, add's inputs against each other, the
// detect head against nc and its anchors. Names the node and both numbers on a mismatch.
inline void validate(const Graph& g) {
  PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == Op::input, "graph: the first node must be the image input");
  // Channel counts in graph order, each read once (Graph::channels recurses through concats, which
  // an untrusted file could nest into an exponential walk); bounded so no sum can overflow.
  std::vector<int64_t> count(g.nodes.size(), 0);
  auto bounded = [](const Node& n, int64_t c) {
    if (c < 1 || c > kMaxChannels)
      detail::invalid(n, "has " + detail::count_str(c) + " channels; a node has between 1 and " + detail::count_str(kMaxChannels));
    return c;
  };
  for (size_t i = 0; i < g.nodes.size(); ++i) {
    const Node& n = g.nodes[i];
    for (int in : n.inputs) {
      if (in < 0 || in >= static_cast<int>(i)) detail::invalid(n, "reads node " + std::to_string(in) + ", which does not precede it");
      if (g.nodes[in].op == Op::detect) detail::invalid(n, "reads the detect node '" + g.nodes[in].name + "', whose output is no feature map");
    }
    const bool needs_inputs = n.op != Op::input;
    if (needs_inputs && n.inputs.empty()) detail::invalid(n, "has no input");
    if (n.op == Op::input) {
      if (!std::holds_alternative<InputAttrs>(n.attrs) || n.get<InputAttrs>().channels < 1)
        detail::invalid(n, "needs a positive channel count");
      count[i] = bounded(n, n.get<InputAttrs>().channels);
      continue;
    }
    const int64_t in_channels = count[n.inputs[0]];
    if (n.op == Op::conv) {
      if (!std::holds_alternative<ConvAttrs>(n.attrs)) detail::invalid(n, "has no conv attributes");
      if (!n.has_tensor("weight") || n.tensor("weight").dim() != 4) detail::invalid(n, "needs a weight [OC, IC/groups, KH, KW]");
      const ConvAttrs& c = n.get<ConvAttrs>();
      const Shape& w = n.tensor("weight").shape();
      if (c.groups < 1 || c.groups > kMaxChannels || w[0] % c.groups) detail::invalid(n, "weight has " + detail::count_str(w[0]) + " output channels, not a multiple of groups " + detail::count_str(c.groups));
      if (w[1] * c.groups != in_channels)
        detail::invalid(n, "weight reads " + detail::count_str(w[1] * c.groups) + " input channels, its input '" +
                               g.nodes[n.inputs[0]].name + "' has " + detail::count_str(in_channels));
      if (w[2] != c.kernel || w[3] != c.kernel)
        detail::invalid(n, "kernel " + detail::count_str(c.kernel) + " but the weight is " + detail::count_str(w[2]) + "x" + detail::count_str(w[3]));
      if (c.stride < 1 || c.padding < 0) detail::invalid(n, "needs stride >= 1 and padding >= 0");
    }
    if (n.op == Op::max_pool) {
      const PoolAttrs& p = n.get<PoolAttrs>();
      if (p.kernel < 1 || p.stride < 1 || p.padding < 0) detail::invalid(n, "needs kernel and stride >= 1, padding >= 0");
    }
    if (n.op == Op::upsample && n.get<UpsampleAttrs>().scale < 1) detail::invalid(n, "needs a scale >= 1");
    if (n.op == Op::conv) count[i] = bounded(n, n.tensor("weight").shape()[0]);
    else if (n.op == Op::concat)
      for (int j : n.inputs) count[i] = bounded(n, count[i] + count[j]);
    else if (n.op != Op::detect) count[i] = count[n.inputs[0]];
    const int64_t out_channels = count[i];
    for (const ChannelAxis& a : declare_channels(n).axes) {
      if (!n.has_tensor(a.tensor)) detail::invalid(n, std::string("has no tensor '") + a.tensor + "'");
      const Tensor& t = n.tensor(a.tensor);
      const int64_t expected = a.side == ChannelSide::output ? out_channels : in_channels;
      if (t.dim() <= a.axis || t.shape()[a.axis] != expected)
        detail::invalid(n, std::string("tensor '") + a.tensor + "' " + shape_str(t.shape()) + " should have " +
                               detail::count_str(expected) + " channels on axis " + std::to_string(a.axis) + " (" +
                               (a.side == ChannelSide::output ? "its output" : "its input '" + g.nodes[n.inputs[0]].name + "'") + ")");
    }
    if (n.op == Op::add)
      for (int j : n.inputs)
        if (count[j] != in_channels)
          detail::invalid(n, "input '" + g.nodes[j].name + "' has " + detail::count_str(count[j]) + " channels, input '" +
                                 g.nodes[n.inputs[0]].name + "' has " + detail::count_str(in_channels));
    if (n.op == Op::detect) {
      const DetectAttrs& d = n.get<DetectAttrs>();
      const int64_t levels = static_cast<int64_t>(n.inputs.size());
      for (int j : n.inputs)
        if (count[j] != d.na * d.outputs_per_anchor())
          detail::invalid(n, "input '" + g.nodes[j].name + "' has " + detail::count_str(count[j]) + " channels, na·(nc+5) is " +
                                 detail::count_str(d.na * d.outputs_per_anchor()));
      if (static_cast<int64_t>(d.strides.size()) != levels)
        detail::invalid(n, detail::count_str(levels) + " levels but " + detail::count_str(static_cast<int64_t>(d.strides.size())) + " strides");
      if (!n.has_tensor("anchor_grid") || n.tensor("anchor_grid").numel() != levels * d.na * 2)
        detail::invalid(n, "needs an anchor_grid of " + detail::count_str(levels * d.na * 2) + " numbers [nl, 1, na, 1, 1, 2]");
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
