// backward(): reverse-mode differentiation over the recorded Nodes.
//
//  1. Order the nodes reachable from the output so each comes after every node that uses it.
//  2. Seed the output's gradient (1 for a scalar, or the given seed).
//  3. Visit nodes in that order: call the node's backward, and add each input gradient either to
//     the producing node's pending gradient or, for a leaf, to the leaf's .grad().
//  4. Free the graph: drop every node's saved tensors so memory returns immediately.
#pragma once
#include <unordered_map>
#include <unordered_set>

#include "pdyolo/autograd/node.hpp"
#include "pdyolo/core/op_profile.hpp"

namespace pdyolo::autograd {

namespace detail {

// Whether t alone references its storage: nothing else can see a change made to it in place.
inline bool sole_owner(const std::shared_ptr<TensorImpl>& t) { return t.use_count() == 1 && t->storage.use_count() == 1; }

// sum (contiguous f32, written in place) += g (f32, any layout, the same shape).
inline void add_into(const Tensor& sum, const Tensor& g) {
  float* out = sum.data<float>();
  const float* in = g.data<float>();
  if (g.is_contiguous())
    return parallel_for(0, sum.numel(), 1 << 15, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) out[i] += in[i];
    });
  const int64_t inner = g.shape().back(), inner_stride = g.strides().back();
  pdyolo::detail::for_each_strided_row(g.shape(), g.strides(), [&](int64_t row, int64_t offset) {
    for (int64_t i = 0; i < inner; ++i) out[row * inner + i] += in[offset + i * inner_stride];
  });
}

// Adds gradient g into an accumulator slot. The first gradient is stored as is (no copy; a view
// such as a slice of concat's gradient stays one unless `contiguous`, which leaves' .grad are).
// A later one is added in place into the slot's tensor or into g where that one is contiguous and
// referenced from nowhere else, else into a fresh sum: a gradient still shared (add's backward
// hands one tensor to both inputs) is never modified.
inline void accumulate(std::shared_ptr<TensorImpl>& slot, const Tensor& g, bool contiguous) {
  if (!slot) {
    slot = (g.is_contiguous() || !contiguous ? g.detach() : contiguous_copy(g)).impl_ptr();
    return;
  }
  const bool slot_is_private = sole_owner(slot);  // asked before `previous` shares it
  const Tensor previous(slot);
  if (slot_is_private && previous.is_contiguous()) return add_into(previous, g);
  if (g.is_contiguous() && sole_owner(g.impl_ptr())) {
    add_into(g, previous);
    slot = g.impl_ptr();
    return;
  }
  Tensor sum = contiguous_copy(previous);
  add_into(sum, g);
  slot = sum.impl_ptr();
}

// Nodes reachable from root, each listed after all nodes that consume its output.
// Shared pointers keep every node alive while backward frees the graph.
inline std::vector<std::shared_ptr<Node>> topological_order(const std::shared_ptr<Node>& root) {
  std::vector<std::shared_ptr<Node>> order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<std::shared_ptr<Node>, size_t>> stack{{root, 0}};
  visited.insert(root.get());
  while (!stack.empty()) {  // iterative DFS: deep graphs must not overflow the call stack
    auto& [node, next_input] = stack.back();
    if (next_input < node->inputs.size()) {
      const Tensor& in = node->inputs[next_input++];
      const std::shared_ptr<Node> child = in.defined() ? in.grad_fn() : nullptr;
      if (child && visited.insert(child.get()).second) stack.push_back({child, 0});
    } else {
      order.push_back(node);
      stack.pop_back();
    }
  }
  std::reverse(order.begin(), order.end());  // post-order reversed: consumers first
  return order;
}

}  // namespace detail

inline void run_backward(const Tensor& root, const Tensor& seed, bool retain_graph) {
  PDYOLO_CHECK(root.requires_grad(), "backward: tensor does not require grad (no recorded graph)");
  Tensor grad_root;
  if (seed.defined()) {
    PDYOLO_CHECK(seed.shape() == root.shape(), "backward: seed gradient shape ",
                 shape_str(seed.shape()), " differs from tensor shape ", shape_str(root.shape()));
    grad_root = seed;
  } else {
    PDYOLO_CHECK(root.numel() == 1, "backward: tensor of shape ", shape_str(root.shape()),
                 " is not a scalar; pass a seed gradient of that shape");
    grad_root = Tensor::ones(root.shape());
  }
  NoGradGuard no_grad;
  if (root.is_leaf()) {
    detail::accumulate(root.impl()->grad, grad_root, true);
    return;
  }

  const std::vector<std::shared_ptr<Node>> order = detail::topological_order(root.grad_fn());
  std::unordered_map<Node*, std::shared_ptr<TensorImpl>> pending;
  pending[root.grad_fn().get()] = grad_root.impl_ptr();
  for (const std::shared_ptr<Node>& node : order) {
    auto it = pending.find(node.get());
    if (it == pending.end()) continue;  // no gradient flowed here
    Tensor grad_out(it->second);
    pending.erase(it);
    PDYOLO_CHECK(node->backward != nullptr, "backward: the graph through '", node->op,
                 "' was already freed by an earlier backward(); pass retain_graph=true to reuse it");
    std::vector<Tensor> grads;
    {
      const OpTimer timer("backward", node->op);
      grads = node->backward(grad_out);
    }
    const OpTimer timer("backward", "(summing gradients)");
    PDYOLO_CHECK(grads.size() == node->inputs.size(), "backward of '", node->op, "' returned ",
                 grads.size(), " gradients for ", node->inputs.size(), " inputs");
    for (size_t i = 0; i < grads.size(); ++i) {
      const Tensor& input = node->inputs[i];
      if (!grads[i].defined() || !input.defined() || !input.requires_grad()) continue;
      PDYOLO_CHECK(grads[i].shape() == input.shape(), "backward of '", node->op, "': gradient ",
                   shape_str(grads[i].shape()), " for input ", i, " of shape ",
                   shape_str(input.shape()));
      if (input.is_leaf()) {
        detail::accumulate(input.impl()->grad, grads[i], true);
      } else {
        detail::accumulate(pending[input.grad_fn().get()], grads[i], false);
      }
    }
  }
  if (!retain_graph) {
    for (const std::shared_ptr<Node>& node : order) {
      node->backward = nullptr;  // releases the tensors the closure saved
      node->inputs.clear();      // and the references to intermediate results
    }
  }
}

}  // namespace pdyolo::autograd

namespace pdyolo {

inline void Tensor::backward(const Tensor& seed, bool retain_graph) const {
  autograd::run_backward(*this, seed, retain_graph);
}

inline Tensor& Tensor::set_requires_grad(bool on) {
  PDYOLO_CHECK(!on || dtype() == DType::f32, "set_requires_grad: only f32 tensors can require grad, not ",
               dtype_name(dtype()));
  PDYOLO_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad");
  impl()->requires_grad = on;
  return *this;
}

inline Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = this->impl()->storage;
  impl->shape = shape();
  impl->strides = strides();
  impl->offset = storage_offset();
  impl->dtype = dtype();
  return Tensor(std::move(impl));
}

}  // namespace pdyolo
