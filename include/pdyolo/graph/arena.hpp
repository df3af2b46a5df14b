// Memory planning of a planned executor, shared by the fp32 executor (graph/executor.hpp) and the
// int8 one (quant/int8_executor.hpp), whatever their element type and layout:
//   in place   a concat's inputs are written by their producers straight into its channel slices
//              (an input that is the graph's input, another concat, already in a concat, or
//              repeated keeps its own buffer and is copied);
//   lifetimes  a buffer must hold its data from the step that first writes into it to the last
//              step that reads any value in it (the detect head's inputs: the last step);
//   placement  every buffer in one arena; buffers whose lifetimes do not overlap share memory
//              (greedy: largest first, each at the lowest offset clear of every placed buffer
//              whose lifetime overlaps its own).
#pragma once
#include <algorithm>
#include <functional>
#include <vector>

#include "pdyolo/graph/graph.hpp"

namespace pdyolo::graph {

// Where a value lives: buffer `buffer` at channel offset `channel0` (in channels of the buffer).
struct ArenaValue {
  int buffer = -1;
  int64_t channel0 = 0;
  int64_t channels = 0, h = 0, w = 0;
  bool in_concat = false;  // written by its producer into a concat's slice
};

struct ArenaBuffer {
  int64_t channels = 0, h = 0, w = 0;
  int first = 0, last = 0;  // steps during which it must hold its data
  int64_t offset = 0;       // into the arena, in the units place_buffers was given (the planned executors: bytes)
};

// A step as the planner sees it; executors derive their steps from it.
struct ArenaStep {
  int node = -1;                       // the graph node
  std::vector<int> inputs;             // value ids (= the nodes whose values they are)
  int output = -1;                     // value id
  std::vector<bool> written_in_place;  // concat: input j was written into the slice by its producer
  std::vector<int64_t> channel0;       // concat: the channel where input j's slice starts
};

struct ArenaPlan {
  std::vector<ArenaValue> values;    // per value id (node)
  std::vector<ArenaBuffer> buffers;
  int64_t total = 0;                 // size of the arena (those units)
  int64_t unplanned = 0;             // its size if no two buffers shared memory
};

// Values, in-place concats and lifetimes for `shapes` (per node, [N, C, H, W]); value_of: node →
// the value holding its output. With input_buffer the graph's input (value 0) gets a buffer of its
// own, live from before the first step (an executor that converts the input into its layout).
template <class StepT>
ArenaPlan plan_arena(const Graph& g, std::vector<StepT>& steps, const std::vector<int>& value_of, const std::vector<Shape>& shapes,
                     bool input_buffer = false) {
  const std::vector<Node>& nodes = g.nodes;
  ArenaPlan plan;
  std::vector<ArenaValue>& values = plan.values;
  std::vector<ArenaBuffer>& buffers = plan.buffers;
  values.assign(nodes.size(), ArenaValue{});
  auto own_buffer = [&](int v, int step) {
    values[v].buffer = static_cast<int>(buffers.size());
    buffers.push_back({values[v].channels, values[v].h, values[v].w, step, step, 0});
  };
  for (size_t i = 0; i < nodes.size(); ++i)
    if (value_of[i] == static_cast<int>(i) && !shapes[i].empty()) values[i] = {-1, 0, shapes[i][1], shapes[i][2], shapes[i][3], false};
  if (input_buffer) own_buffer(0, 0);
  std::vector<int> step_of(nodes.size(), -1);
  for (int s = 0; s < static_cast<int>(steps.size()); ++s) step_of[steps[s].output] = s;
  for (int s = 0; s < static_cast<int>(steps.size()); ++s) {
    ArenaStep& step = steps[s];
    const Op op = nodes[step.node].op;
    if (op == Op::detect) continue;
    own_buffer(step.output, s);
    if (op != Op::concat) continue;
    step.written_in_place.assign(step.inputs.size(), false);
    step.channel0.assign(step.inputs.size(), 0);
    int64_t channel0 = 0;
    for (size_t j = 0; j < step.inputs.size(); ++j) {
      step.channel0[j] = channel0;
      const int v = step.inputs[j];
      const bool repeated = std::count(step.inputs.begin(), step.inputs.end(), v) > 1;
      const bool movable = v != 0 && !values[v].in_concat && nodes[steps[step_of[v]].node].op != Op::concat && !repeated;
      if (movable) {  // its own buffer (created at its step, unused by anything else so far) is dropped
        buffers[values[v].buffer].channels = 0;
        values[v].buffer = values[step.output].buffer;
        values[v].channel0 = channel0;
        values[v].in_concat = true;
        ArenaBuffer& b = buffers[values[v].buffer];
        b.first = std::min(b.first, step_of[v]);
        step.written_in_place[j] = true;
      }
      channel0 += values[v].channels;
    }
  }
  for (int s = 0; s < static_cast<int>(steps.size()); ++s)
    for (int v : steps[s].inputs)
      if (values[v].buffer >= 0) buffers[values[v].buffer].last = std::max(buffers[values[v].buffer].last, s);
  return plan;
}

// Arena offsets for buffers of size_of(buffer) units — elements or bytes, as the caller counts (0: no memory).
inline void place_buffers(ArenaPlan& plan, const std::function<int64_t(const ArenaBuffer&)>& size_of) {
  std::vector<ArenaBuffer>& buffers = plan.buffers;
  std::vector<int64_t> size(buffers.size(), 0);
  std::vector<int> order;
  plan.unplanned = 0;
  for (int b = 0; b < static_cast<int>(buffers.size()); ++b)
    if (buffers[b].channels > 0) size[b] = size_of(buffers[b]), order.push_back(b), plan.unplanned += size[b];
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return size[a] > size[b]; });
  std::vector<int> placed;
  plan.total = 0;
  for (int b : order) {
    ArenaBuffer& buf = buffers[b];
    std::vector<std::pair<int64_t, int64_t>> taken;  // [begin, end) of overlapping lifetimes
    for (int p : placed)
      if (buffers[p].first <= buf.last && buf.first <= buffers[p].last) taken.push_back({buffers[p].offset, buffers[p].offset + size[p]});
    std::sort(taken.begin(), taken.end());
    int64_t offset = 0;
    for (const auto& [begin, end] : taken) {
      if (offset + size[b] <= begin) break;
      offset = std::max(offset, end);
    }
    buf.offset = offset;
    plan.total = std::max(plan.total, offset + size[b]);
    placed.push_back(b);
  }
}

}  // namespace pdyolo::graph
