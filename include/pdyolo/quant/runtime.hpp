// The int8 model: a fused graph, its quantization plan and its convs in integer form, run on a
// backend that has u8 kernels (backend/dispatch.hpp's table): ref, the scalar reference
// (integer.hpp, the specification), or cpu, the planned int8 executor (int8_executor.hpp, the int8
// GEMM kernels). They are tested to give bit-identical outputs.
#pragma once
#include <memory>
#include <mutex>
#include <vector>

#include "pdyolo/quant/int8_executor.hpp"
#include "pdyolo/quant/integer.hpp"

namespace pdyolo::quant {

class IntegerModel {
 public:
  // g fused; plan calibrated for it. The backend must have u8 kernels for every step of g (an
  // error names the first it lacks); isa: backend cpu's int8 kernel (default: the best this CPU has).
  IntegerModel(const graph::Graph& g, QuantPlan plan, Backend backend = Backend::cpu, kernels::cpu::QconvIsa isa = kernels::cpu::best_qconv_isa())
      : graph_(g.clone()), plan_(std::move(plan)), backend_(backend), isa_(isa) {
    PDYOLO_CHECK(kernels::cpu::qconv_isa_available(isa), "quant: this CPU cannot run the ", kernels::cpu::qconv_isa_name(isa), " kernel");
    const graph::PlannedGraph check(graph_, backend_, DType::u8, nullptr, "int8 model");  // refuses a backend without the kernels
    convs_.resize(graph_.nodes.size());
    for (int i = 0; i < static_cast<int>(graph_.nodes.size()); ++i)
      if (graph_.nodes[static_cast<size_t>(i)].op == graph::Op::conv) convs_[static_cast<size_t>(i)] = make_integer_conv(graph_, plan_, i);
  }

  const QuantPlan& plan() const { return plan_; }
  const graph::Graph& graph() const { return graph_; }
  // The integer form of conv node `node` (what a model file stores).
  const IntegerConv& conv(int node) const {
    PDYOLO_CHECK(graph_.nodes.at(static_cast<size_t>(node)).op == graph::Op::conv, "quant: node ", node, " is not a conv");
    return convs_[static_cast<size_t>(node)];
  }

  // images [N, C, H, W] in [0, 1] (8-bit images: k/255) → the detect head's float raw maps (with
  // raw; the scalar reference always gives them) and decoded boxes (with decode) and, in `levels`,
  // every node's output levels (when given; the nodes of has_output_levels in plan.hpp).
  graph::DetectOutput run(const Tensor& images, std::vector<Tensor>* levels = nullptr, bool decode = true, bool raw = true) const {
    switch (backend_) {
      case Backend::ref: return IntegerReference(graph_, plan_, convs_).run(images, levels, decode);
      case Backend::cpu: break;
      case Backend::cuda: throw_error("int8 model: backend cuda has no u8 kernels");  // (the constructor refuses it first)
    }
    const std::lock_guard<std::mutex> lock(executor_mutex_);
    graph::DetectOutput out = executor().run(images, levels, decode, raw);
    if (levels)
      for (size_t i = 0; i < levels->size(); ++i)
        if (!has_output_levels(graph_, plan_, static_cast<int>(i))) (*levels)[i] = Tensor();
    return out;
  }

 private:
  // The planned int8 executor, made for the first run and kept (executor_mutex_ held).
  Int8Executor& executor() const {
    if (!executor_)
      executor_ = std::make_unique<Int8Executor>(graph_, plan_, convs_,
                                                 [this](int node, const Tensor& x) { return run_float_conv(graph_, plan_, node, x); }, isa_);
    return *executor_;
  }

  graph::Graph graph_;
  QuantPlan plan_;
  Backend backend_;
  kernels::cpu::QconvIsa isa_;
  std::vector<IntegerConv> convs_;  // per node (empty for other ops)
  mutable std::unique_ptr<Int8Executor> executor_;  // backend cpu: planned at the first run
  mutable std::mutex executor_mutex_;
};

}  // namespace pdyolo::quant
