// The planned-execution skeleton every planned executor stands on: the fp32 executor
// (graph/executor.hpp, backend cpu on f32) and the int8 executor (quant/int8_executor.hpp, backend
// cpu on u8); a CUDA backend's executor is a third user, with device memory. What it does once per
// graph and once per input shape is the same for all of them; only the layout of a value and the
// kernels a step calls differ, and those stay with the executor:
//
//   construct  refuse a graph the executors cannot run — no input or detect node, a node that is
//              not fused, or a step whose kernel kind (the op table's `kernel`) the backend lacks
//              for the run's dtype (backend/dispatch.hpp's table: `supports`) — naming the node,
//              the op, the backend and the dtype. The steps: graph/fuse.hpp's plan_steps (a conv
//              with the activation after it is one step)
//   replan     per input shape: shapes, the arena plan (graph/arena.hpp: in-place concats,
//              lifetimes), each step's GFLOP for the profile
//   allocate   one block of the backend's device memory for every buffer (core/storage.hpp's
//              Storage, from that device type's allocator), the buffers placed in it by the
//              executor's sizes
//   run        the steps in order, each timed by the one profiler (core/op_profile.hpp) as
//              "<scope> <op>" and by its node's name
#pragma once
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/core/storage.hpp"
#include "pdyolo/core/op_profile.hpp"
#include "pdyolo/graph/arena.hpp"
#include "pdyolo/graph/fuse.hpp"

namespace pdyolo::graph {

// A step of a planned run: a node (for a conv whose activation is merged, the conv), the values it
// reads and the value it writes (value ids are node ids: graph/arena.hpp).
struct PlannedStep : ArenaStep {
  int activation = -1;  // the activation node merged into this step's conv, or -1
};

// The device a backend's memory lives on.
inline Device device_of(Backend backend) {
  switch (backend) {
    case Backend::ref:
    case Backend::cpu: return cpu_device();
    case Backend::cuda: return cuda_device();
  }
  return cpu_device();
}

// The dtype node `n` runs in on a run over `dtype`: the detect head decodes float maps always.
inline DType step_dtype(const Node& n, DType dtype) { return n.op == Op::detect ? DType::f32 : dtype; }

class PlannedGraph {
 public:
  // g must be fused and end in a detect node, and outlive this; taps (which may be null) keep their
  // nodes' outputs as steps of their own. who names the executor in errors.
  PlannedGraph(const Graph& g, Backend backend, DType dtype, const Taps* taps, std::string who)
      : graph_(g), backend_(backend), dtype_(dtype), who_(std::move(who)) {
    PDYOLO_CHECK(!g.nodes.empty() && g.nodes[0].op == Op::input, who_, ": the graph has no input node");
    PDYOLO_CHECK(g.detect_node() >= 0, who_, ": the graph has no detect node");
    for (const Node& n : g.nodes)
      PDYOLO_CHECK(describe(n.op).inference, who_, ": node '", n.name, "' (", op_name(n.op), ") is not fused; run graph::fuse on the model first");
    build_steps(taps);
    for (const PlannedStep& step : steps_) check_kernels(step);
  }

  std::vector<PlannedStep>& steps() { return steps_; }
  const std::vector<PlannedStep>& steps() const { return steps_; }
  const Node& node_of(const PlannedStep& step) const { return graph_.nodes[static_cast<size_t>(step.node)]; }

  // Plans for a batch of n images of h × w; false (and nothing changes) when that is the plan in
  // force. With input_buffer the input gets a buffer of its own in the arena (graph/arena.hpp). The
  // executor then allocates and prepares its steps, and commits: a plan that failed half-way (say,
  // out of memory) is not in force, so the next run plans again.
  bool replan(int64_t n, int64_t h, int64_t w, bool input_buffer) {
    if (committed_ && n == batch_ && h == height_ && w == width_) return false;
    committed_ = false;
    shapes_ = graph_.infer_shapes(h, w);
    arena_ = plan_arena(graph_, steps_, value_of_, shapes_, input_buffer);
    block_.reset();
    step_gflop_.assign(steps_.size(), 0.0);
    for (size_t s = 0; s < steps_.size(); ++s) step_gflop_[s] = graph_.node_flops(static_cast<size_t>(steps_[s].node), shapes_) / 1e9;
    batch_ = n, height_ = h, width_ = w;
    return true;
  }

  // Places the buffers (bytes_of(buffer) bytes each, 0: none) and allocates the arena on the
  // backend's device (zero-filled in host memory); after replan, and after the executor adjusted the
  // plan's buffers.
  void allocate(const std::function<int64_t(const ArenaBuffer&)>& bytes_of) {
    place_buffers(arena_, bytes_of);
    block_ = std::make_unique<Storage>(static_cast<size_t>(arena_.total), device_of(backend_));
    if (block_->device().type == DeviceType::cpu) std::memset(block_->data(), 0, block_->nbytes());
  }

  // The plan is in force (see replan).
  void commit() { committed_ = true; }

  // Runs fn(s, step) for every step in order, timed as "<scope> <op>" and by the node's name.
  template <class Fn>
  void run(const char* scope, Fn&& fn) {
    for (size_t s = 0; s < steps_.size(); ++s) {
      const Node& node = node_of(steps_[s]);
      const OpTimer timer(scope, op_name(node.op), node.name, step_gflop_[s]);
      fn(s, steps_[s]);
    }
  }

  // The last plan's.
  const std::vector<Shape>& shapes() const { return shapes_; }
  ArenaPlan& arena() { return arena_; }
  const ArenaPlan& arena() const { return arena_; }
  uint8_t* arena_data() const { return block_ ? static_cast<uint8_t*>(block_->data()) : nullptr; }
  int64_t arena_bytes() const { return block_ ? static_cast<int64_t>(block_->nbytes()) : 0; }
  int64_t batch() const { return batch_; }

 private:
  void build_steps(const Taps* taps) {
    value_of_.assign(graph_.nodes.size(), -1);
    value_of_[0] = 0;
    for (const Step& s : plan_steps(graph_, Op::conv, taps)) {
      PlannedStep step;
      step.node = s.node;
      for (int in : graph_.nodes[static_cast<size_t>(s.node)].inputs) step.inputs.push_back(value_of_[static_cast<size_t>(in)]);
      step.output = s.output();
      step.activation = s.activation;
      value_of_[static_cast<size_t>(s.node)] = value_of_[static_cast<size_t>(s.output())] = s.output();
      steps_.push_back(std::move(step));
    }
  }

  // Throws, naming the step's node, when the backend lacks its kernel kind for the run's dtype (an
  // activation merged into a conv is the conv kernel's epilogue, not a kernel of its own).
  void check_kernels(const PlannedStep& step) const {
    const Node& n = node_of(step);
    PDYOLO_CHECK(!(n.op == Op::activation && dtype_ == DType::u8), who_, ": activation '", n.name,
                 "' does not follow a conv it alone reads (on u8 levels an activation is a table inside its conv's requantization)");
    const OpKind kind = describe(n.op).kernel;
    const DType d = step_dtype(n, dtype_);
    PDYOLO_CHECK(supports(kind, backend_, d), who_, ": node '", n.name, "' (", op_name(n.op), ") needs ", op_kind_name(kind),
                 " kernels for ", dtype_name(d), ", which backend ", backend_name(backend_), " does not have");
  }

  const Graph& graph_;
  Backend backend_;
  DType dtype_;
  std::string who_;
  std::vector<PlannedStep> steps_;
  std::vector<int> value_of_;
  std::vector<Shape> shapes_;
  ArenaPlan arena_;
  std::unique_ptr<Storage> block_;  // the arena: one block of the backend's device memory
  std::vector<double> step_gflop_;  // per step and image
  int64_t batch_ = -1, height_ = -1, width_ = -1;
  bool committed_ = false;
};

}  // namespace pdyolo::graph
