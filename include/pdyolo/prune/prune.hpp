// Structured channel pruning on the graph's channel groups (graph/channels.hpp): score every
// channel of every prunable group, choose the channels to remove (per group or across groups), then
// remove them for good (graph::keep_channels) or silence them in place (mask: the unpruned shapes,
// the chosen channels' producers zeroed — the same outputs as the pruned graph, which is what the
// tests check).
//
// A channel's importance sums over every tensor axis of its group, as Torch-Pruning's group
// importance does: l1 Σ|w| and l2 Σw² over the channel's slice of each member (producing convs'
// rows, consuming convs' input columns, batch-norm parameters), bn |γ| over the group's batch norms
// (network slimming), taylor Σ|w·∂L/∂w| (first-order Taylor: how much the loss would change were
// the weights zeroed) with the gradients the tensors hold — train::Trainer::accumulate_gradients
// leaves them there, of the detection loss (taylor) or of the distillation loss (kd_taylor: the
// same formula, the loss is the caller's choice) — and random a uniform draw (the baseline every
// criterion must beat).
#pragma once
#include <algorithm>
#include <cmath>
#include <functional>
#include <numeric>
#include <string>
#include <vector>

#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/core/rng.hpp"
#include "pdyolo/graph/channels.hpp"

namespace pdyolo::prune {

enum class Importance { l1, l2, bn, taylor, kd_taylor, random };

inline Importance parse_importance(const std::string& s) {
  if (s == "l1") return Importance::l1;
  if (s == "l2") return Importance::l2;
  if (s == "bn") return Importance::bn;
  if (s == "taylor") return Importance::taylor;
  if (s == "kd-taylor") return Importance::kd_taylor;
  if (s == "random") return Importance::random;
  throw_error("--importance: unknown criterion '", s, "' (l1, l2, bn, taylor, kd-taylor or random)");
}
inline const char* importance_name(Importance kind) {
  switch (kind) {
    case Importance::l1: return "l1";
    case Importance::l2: return "l2";
    case Importance::bn: return "bn";
    case Importance::taylor: return "taylor";
    case Importance::kd_taylor: return "kd-taylor";
    case Importance::random: return "random";
  }
  return "?";
}
inline bool needs_gradients(Importance kind) { return kind == Importance::taylor || kind == Importance::kd_taylor; }

// The multiple of output channels the preferred backend's fp32 convolutions compute without padding
// (backend/dispatch.hpp: on the CPU, the row block of its GEMM micro-kernel).
inline int64_t kernel_channel_multiple() { return preferred_channel_multiple(preferred_backend()); }

struct PruneOptions {
  Importance importance = Importance::l1;
  double ratio = 0.3;             // the fraction of the prunable channels to remove
  bool global = false;            // rank channels across groups (scores normalised per group) instead of per group
  double max_layer_ratio = 0.8;   // no group loses more than this fraction of its channels
  int64_t round_to = 8;           // a group keeps a multiple of this many channels (when it has more)
  std::vector<std::string> ignore;  // groups with a member node of one of these names stay whole
  uint64_t seed = 0;              // random importance
};

// The channels to remove from one group, identified by its first space's node (stable while other
// groups are pruned: a group's own channel numbering never changes).
struct GroupCut {
  std::string node;              // the node producing the group's first space
  int64_t channels = 0;          // the group's channels before
  std::vector<int64_t> removed;  // group channel indices, ascending
};

namespace detail {

// Σ over each slice along `axis` of `t` (one value per position) of |x| (l1), x² (l2) or, given the
// gradient, |x·g| (taylor).
inline std::vector<double> slice_sums(const Tensor& t, const Tensor* grad, int axis, bool squared) {
  const Tensor d = contiguous_copy(t);
  const Tensor gd = grad ? contiguous_copy(*grad) : Tensor();
  const Shape& s = d.shape();
  int64_t inner = 1, outer = 1;
  for (int i = axis + 1; i < static_cast<int>(s.size()); ++i) inner *= s[i];
  for (int i = 0; i < axis; ++i) outer *= s[i];
  std::vector<double> sums(static_cast<size_t>(s[axis]), 0.0);
  const float* x = d.data<float>();
  const float* g = grad ? gd.data<float>() : nullptr;
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t p = 0; p < s[axis]; ++p)
      for (int64_t i = 0; i < inner; ++i) {
        const int64_t at = (o * s[axis] + p) * inner + i;
        const double v = x[at];
        sums[static_cast<size_t>(p)] += g ? std::fabs(v * g[at]) : squared ? v * v : std::fabs(v);
      }
  return sums;
}

inline bool ignored(const graph::Graph& g, const graph::ChannelGroups& groups, const graph::ChannelGroup& group, const PruneOptions& o) {
  for (int space : group.spaces)
    if (std::find(o.ignore.begin(), o.ignore.end(), g.nodes[groups.spaces[space].node].name) != o.ignore.end()) return true;
  return false;
}

// How many channels a group keeps when `remove` are asked for: at least (1 − max_layer_ratio) of
// them, rounded up to a multiple of round_to (a group of fewer channels keeps at least one).
inline int64_t kept_count(int64_t channels, int64_t remove, const PruneOptions& o) {
  int64_t keep = std::max<int64_t>(channels - remove, static_cast<int64_t>(std::ceil(channels * (1.0 - o.max_layer_ratio))));
  if (o.round_to > 1 && channels > o.round_to) keep = (keep + o.round_to - 1) / o.round_to * o.round_to;
  return std::clamp<int64_t>(keep, 1, channels);
}

}  // namespace detail

// Per-channel importance of a group (higher: more important). taylor and kd_taylor read the
// gradients the group's tensors hold (an error when none has one).
inline std::vector<double> channel_importance(const graph::Graph& g, const graph::ChannelGroup& group, Importance kind, Generator& gen) {
  std::vector<double> score(static_cast<size_t>(group.channels), 0.0);
  if (kind == Importance::random) {
    for (double& s : score) s = gen.uniform();
    return score;
  }
  const bool taylor = needs_gradients(kind);
  bool any_gradient = false;
  for (const graph::ChannelUse& u : group.uses) {
    const graph::Node& n = g.nodes[u.node];
    if (kind == Importance::bn && !(n.op == graph::Op::batch_norm && u.tensor == "weight")) continue;
    if (kind != Importance::bn && (u.tensor == "running_mean" || u.tensor == "running_var")) continue;  // statistics, not weights
    const Tensor& t = n.tensor(u.tensor);
    const Tensor grad = t.grad();
    if (taylor && !grad.defined()) continue;  // not trained (e.g. the anchor grid)
    any_gradient = any_gradient || taylor;
    const std::vector<double> sums = detail::slice_sums(t, taylor ? &grad : nullptr, u.axis, kind == Importance::l2);
    for (size_t k = 0; k < u.index.size(); ++k)
      if (u.index[k] >= 0) score[k] += sums[static_cast<size_t>(u.index[k])];
  }
  PDYOLO_CHECK(!taylor || any_gradient, "prune: Taylor importance needs the loss's gradients in the model's tensors (node '",
               g.nodes[group.uses.at(0).node].name, "' has none): accumulate them first (train::Trainer::accumulate_gradients)");
  return score;
}

// Chooses the channels to remove: `ratio` of each prunable group's (local), or the lowest-scoring
// `ratio` of all prunable channels with each group's scores divided by their mean (global).
inline std::vector<GroupCut> plan_pruning(const graph::Graph& g, const PruneOptions& o) {
  PDYOLO_CHECK(o.ratio >= 0 && o.ratio < 1, "prune: the ratio must lie in [0, 1), got ", o.ratio);
  PDYOLO_CHECK(o.max_layer_ratio >= 0 && o.max_layer_ratio < 1, "prune: --max-layer-ratio must lie in [0, 1), got ", o.max_layer_ratio);
  const graph::ChannelGroups groups = graph::channel_groups(g);
  Generator gen(o.seed);
  struct Candidate {
    size_t group;
    std::vector<double> score;
  };
  std::vector<Candidate> candidates;
  for (size_t k = 0; k < groups.groups.size(); ++k) {
    const graph::ChannelGroup& group = groups.groups[k];
    if (!group.prunable || group.channels < 2 || detail::ignored(g, groups, group, o)) continue;
    candidates.push_back({k, channel_importance(g, group, o.importance, gen)});
  }
  std::vector<int64_t> remove(candidates.size(), 0);
  if (!o.global) {
    for (size_t c = 0; c < candidates.size(); ++c)
      remove[c] = static_cast<int64_t>(std::floor(o.ratio * static_cast<double>(groups.groups[candidates[c].group].channels)));
  } else {
    std::vector<std::pair<double, size_t>> all;  // (normalised score, candidate)
    for (size_t c = 0; c < candidates.size(); ++c) {
      const std::vector<double>& s = candidates[c].score;
      const double mean = std::accumulate(s.begin(), s.end(), 0.0) / static_cast<double>(s.size());
      for (double v : s) all.emplace_back(mean > 0 ? v / mean : 0.0, c);
    }
    std::sort(all.begin(), all.end());
    const size_t total = static_cast<size_t>(std::floor(o.ratio * static_cast<double>(all.size())));
    for (size_t i = 0; i < total; ++i) ++remove[all[i].second];
  }
  std::vector<GroupCut> cuts;
  for (size_t c = 0; c < candidates.size(); ++c) {
    const graph::ChannelGroup& group = groups.groups[candidates[c].group];
    const int64_t keep = detail::kept_count(group.channels, remove[c], o);
    if (keep >= group.channels) continue;
    std::vector<int64_t> order(static_cast<size_t>(group.channels));
    std::iota(order.begin(), order.end(), 0);
    const std::vector<double>& s = candidates[c].score;
    std::stable_sort(order.begin(), order.end(), [&s](int64_t a, int64_t b) { return s[a] < s[b]; });
    GroupCut cut{g.nodes[groups.spaces[group.spaces[0]].node].name, group.channels,
                 std::vector<int64_t>(order.begin(), order.begin() + (group.channels - keep))};
    std::sort(cut.removed.begin(), cut.removed.end());
    cuts.push_back(std::move(cut));
  }
  return cuts;
}

namespace detail {
inline const graph::ChannelGroup& group_of_cut(const graph::Graph& g, const graph::ChannelGroups& groups, const GroupCut& cut) {
  for (const graph::ChannelGroup& group : groups.groups)
    if (g.nodes[groups.spaces[group.spaces[0]].node].name == cut.node) {
      PDYOLO_CHECK(group.channels == cut.channels, "prune: group of '", cut.node, "' has ", group.channels, " channels, the plan ", cut.channels);
      return group;
    }
  throw_error("prune: no channel group starts at '", cut.node, "'");
}
}  // namespace detail

// Removes the planned channels from the graph (its tensors shrink; validate() holds afterwards).
inline void apply_pruning(graph::Graph& g, const std::vector<GroupCut>& cuts) {
  for (const GroupCut& cut : cuts) {
    const graph::ChannelGroups groups = graph::channel_groups(g);  // positions move with every cut
    std::vector<int64_t> keep;
    for (int64_t k = 0, r = 0; k < cut.channels; ++k) {
      if (r < static_cast<int64_t>(cut.removed.size()) && cut.removed[static_cast<size_t>(r)] == k) ++r;
      else keep.push_back(k);
    }
    graph::keep_channels(g, detail::group_of_cut(g, groups, cut), keep);
  }
  graph::validate(g);
}

// Silences the planned channels without removing them: their producers' weights, biases and
// batch-norm scale and shift become 0, so each such channel is exactly 0 wherever it is read
// (SiLU, ReLU and LeakyReLU keep 0 at 0). Outputs then equal apply_pruning's.
inline void apply_mask(graph::Graph& g, const std::vector<GroupCut>& cuts) {
  const graph::ChannelGroups groups = graph::channel_groups(g);
  for (const GroupCut& cut : cuts) {
    const graph::ChannelGroup& group = detail::group_of_cut(g, groups, cut);
    for (const graph::ChannelUse& u : group.uses) {
      graph::Node& n = g.nodes[u.node];
      const bool producer_side = (n.op == graph::Op::conv && (u.tensor == "bias" || (u.tensor == "weight" && u.axis == 0))) ||
                                 (n.op == graph::Op::batch_norm && (u.tensor == "weight" || u.tensor == "bias"));
      if (!producer_side) continue;
      Tensor& t = n.tensor(u.tensor);
      Tensor d = contiguous_copy(t);
      const Shape& s = d.shape();
      int64_t inner = 1, outer = 1;
      for (int i = u.axis + 1; i < static_cast<int>(s.size()); ++i) inner *= s[i];
      for (int i = 0; i < u.axis; ++i) outer *= s[i];
      for (int64_t k : cut.removed) {
        const int64_t p = u.index[static_cast<size_t>(k)];
        if (p < 0) continue;
        for (int64_t o = 0; o < outer; ++o) std::fill_n(d.data<float>() + (o * s[u.axis] + p) * inner, inner, 0.0f);
      }
      if (t.requires_grad()) d.set_requires_grad();
      t = d;
    }
  }
}

// A plan found for a target (plan_for_target): its cuts, the ratio that gave them, and what the
// measure said of the pruned graph.
struct TargetPlan {
  std::vector<GroupCut> cuts;
  double ratio = 0;
  double measured = 0;
};

// The smallest ratio (to 1/2^steps) whose pruned graph `measure` puts at or below `target` — the
// measure being parameters, FLOPs or latency, all falling as the ratio grows — found by bisection,
// each candidate pruned on a copy and measured. A noisy measure (latency) can only make the search
// settle on a higher ratio than needed: the returned plan was itself measured within the target.
// An error when even the highest ratio options allow cannot reach the target.
inline TargetPlan plan_for_target(const graph::Graph& g, PruneOptions o, const std::function<double(const graph::Graph&)>& measure,
                                  double target, int steps = 10) {
  auto attempt = [&](double ratio) {
    o.ratio = ratio;
    TargetPlan plan{plan_pruning(g, o), ratio, 0};
    graph::Graph pruned = g.clone();
    apply_pruning(pruned, plan.cuts);
    plan.measured = measure(pruned);
    return plan;
  };
  TargetPlan best = attempt(0.0);
  if (best.measured <= target) return best;
  const double highest = 0.99;
  best = attempt(highest);
  PDYOLO_CHECK(best.measured <= target, "prune: the target ", target, " is out of reach — removing ", highest * 100,
               "% of the channels (no group losing more than --max-layer-ratio ", o.max_layer_ratio, ") still measures ", best.measured);
  double lo = 0.0, hi = highest;  // lo misses the target, hi meets it
  for (int i = 0; i < steps; ++i) {
    const double mid = 0.5 * (lo + hi);
    TargetPlan plan = attempt(mid);
    if (plan.measured <= target) hi = mid, best = std::move(plan);
    else lo = mid;
  }
  return best;
}

}  // namespace pdyolo::prune
