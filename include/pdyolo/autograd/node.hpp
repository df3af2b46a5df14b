// The autograd tape. Every differentiable op that sees an input with requires_grad records one
// Node on its output: the op's name, its inputs, and a function from the output's gradient to one
// gradient per input. backward() walks these nodes from the output back to the leaves.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "pdyolo/core/tensor.hpp"

namespace pdyolo::autograd {

// grad_output has the output's shape; the result holds one gradient per input, each with that
// input's shape, or an undefined Tensor for inputs that get no gradient.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

struct Node {
  std::string op;              // e.g. "conv2d", shown in error messages
  std::vector<Tensor> inputs;  // the op's inputs, in order
  BackwardFn backward;         // empty once the graph has been freed

  Node() = default;
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;
  // Tears long chains down iteratively: the default destructor would recurse once per node.
  ~Node() {
    std::vector<std::shared_ptr<Node>> orphans;
    auto release_inputs = [&orphans](std::vector<Tensor>& tensors) {
      for (Tensor& t : tensors) {
        if (t.defined() && t.impl_ptr().use_count() == 1 && t.impl()->grad_fn.use_count() == 1)
          orphans.push_back(std::move(t.impl()->grad_fn));
      }
      tensors.clear();
    };
    release_inputs(inputs);
    while (!orphans.empty()) {
      std::shared_ptr<Node> node = std::move(orphans.back());
      orphans.pop_back();
      release_inputs(node->inputs);
    }  // `node` is destroyed here with no inputs left, so it does not recurse
  }
};

// ---- grad mode ---------------------------------------------------------------------------------
inline bool& grad_mode_flag() {
  thread_local bool enabled = true;
  return enabled;
}
inline bool is_grad_enabled() { return grad_mode_flag(); }

// Disables recording for its lifetime (inference, optimizer updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_mode_flag()) { grad_mode_flag() = false; }
  ~NoGradGuard() { grad_mode_flag() = previous_; }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// Attaches a Node to `output` when grad mode is on and any input requires grad. Backward
// functions must not capture `output` itself (that would make a reference cycle); capture
// output.detach() instead.
inline Tensor record(Tensor output, const char* op, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!is_grad_enabled()) return output;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return output;
  auto node = std::make_shared<Node>();
  node->op = op;
  node->inputs = std::move(inputs);
  node->backward = std::move(backward);
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
  return output;
}

}  // namespace pdyolo::autograd

namespace pdyolo {
using autograd::NoGradGuard;
}
