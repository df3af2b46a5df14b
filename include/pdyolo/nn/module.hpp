// Module: a node in a tree of layers owning named parameters and buffers. Names join with dots
// from the root ("model.3.conv.weight"), matching PyTorch state dicts, so checkpoints map 1:1.
#pragma once
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "pdyolo/core/tensor.hpp"

namespace pdyolo::nn {

using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

inline std::vector<Tensor> tensors_of(const NamedTensors& named) {
  std::vector<Tensor> out;
  for (const auto& entry : named) out.push_back(entry.second);
  return out;
}

inline int64_t element_count(const NamedTensors& named) {
  int64_t n = 0;
  for (const auto& entry : named) n += entry.second.numel();
  return n;
}

// Copies `values` into the tensors of `own` (same names), in place and converting dtype, so every
// handle to them (optimizers, graphs) sees the new values. With strict, missing and unexpected
// names are errors; a shape mismatch is always an error naming the entry and both shapes.
// `source` starts every message (the file being loaded, say).
inline void load_named_tensors(const std::map<std::string, Tensor>& own, const std::map<std::string, Tensor>& values,
                               bool strict, const std::string& source = "load_state_dict") {
  for (const auto& [name, target] : own) {
    auto it = values.find(name);
    if (it == values.end()) {
      PDYOLO_CHECK(!strict, source, ": missing entry '", name, "'");
      continue;
    }
    PDYOLO_CHECK(it->second.shape() == target.shape(), source, ": '", name, "' has shape ",
                 shape_str(it->second.shape()), " but the model expects ", shape_str(target.shape()));
    Tensor(target).copy_(it->second);
  }
  if (strict)
    for (const auto& [name, value] : values)
      PDYOLO_CHECK(own.count(name), source, ": unexpected entry '", name, "'");
}

class Module {
 public:
  // A forward hook sees (module, input, output) and may return a replacement output (fake-quant
  // observers, activation statistics, …); return an undefined Tensor to keep the output.
  using ForwardHook = std::function<Tensor(Module&, const Tensor&, const Tensor&)>;

  virtual ~Module() = default;
  virtual Tensor forward(const Tensor& x) = 0;
  virtual std::string type_name() const = 0;

  // forward() followed by the registered hooks.
  Tensor operator()(const Tensor& x) {
    Tensor y = forward(x);
    for (auto& hook : hooks_) {
      Tensor replaced = hook(*this, x, y);
      if (replaced.defined()) y = replaced;
    }
    return y;
  }
  void register_forward_hook(ForwardHook hook) { hooks_.push_back(std::move(hook)); }
  void clear_forward_hooks() { hooks_.clear(); }

  NamedTensors named_parameters(const std::string& prefix = "") const {
    NamedTensors out;
    collect(prefix, out, true);
    return out;
  }
  NamedTensors named_buffers(const std::string& prefix = "") const {
    NamedTensors out;
    collect(prefix, out, false);
    return out;
  }
  std::vector<Tensor> parameters() const { return tensors_of(named_parameters()); }
  int64_t parameter_count() const { return element_count(named_parameters()); }
  const std::vector<std::pair<std::string, std::shared_ptr<Module>>>& children() const { return children_; }

  // Parameters then buffers, by full name.
  std::map<std::string, Tensor> state_dict(const std::string& prefix = "") const {
    std::map<std::string, Tensor> out;
    for (auto& [name, t] : named_parameters(prefix)) out[name] = t;
    for (auto& [name, t] : named_buffers(prefix)) out[name] = t;
    return out;
  }

  // Copies values into this module's tensors (in place, converting dtype); see load_named_tensors.
  void load_state_dict(const std::map<std::string, Tensor>& values, bool strict = true,
                       const std::string& prefix = "") {
    load_named_tensors(state_dict(prefix), values, strict);
  }

  void train(bool on = true) {
    training_ = on;
    for (auto& [name, child] : children_) child->train(on);
  }
  void eval() { train(false); }
  bool is_training() const { return training_; }

  void zero_grad() {
    for (auto& [name, t] : named_parameters()) t.zero_grad();
  }

 protected:
  Tensor register_parameter(const std::string& name, Tensor t) {
    t.set_requires_grad(true);
    params_.emplace_back(name, t);
    return t;
  }
  Tensor register_buffer(const std::string& name, Tensor t) {
    buffers_.emplace_back(name, t);
    return t;
  }
  template <class M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }

 private:
  void collect(const std::string& prefix, NamedTensors& out, bool parameters) const {
    const std::string dot = prefix.empty() ? "" : prefix + ".";
    for (auto& [name, t] : parameters ? params_ : buffers_) out.emplace_back(dot + name, t);
    for (auto& [name, child] : children_) child->collect(dot + name, out, parameters);
  }

  NamedTensors params_, buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  std::vector<ForwardHook> hooks_;
  bool training_ = true;
};

}  // namespace pdyolo::nn
