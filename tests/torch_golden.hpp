// Golden values from PyTorch: a file tests/data/make_torch_fixtures.py wrote with Debian's
// python3-torch — inputs (in.*), constants (const.*), the output, a random seed gradient, and
// PyTorch's gradients (grad.*) of sum(output · seed).
#pragma once
#include <doctest/doctest.h>

#include <map>
#include <string>

#include "pdyolo/io/safetensors.hpp"
#include "test_util.hpp"

namespace pdyolo::test {

struct Golden {
  io::SafetensorsContent file;
  std::map<std::string, Tensor> inputs;     // leaves requiring grad, keyed without the "in." prefix
  std::map<std::string, Tensor> constants;  // inputs without gradients ("const."), e.g. a teacher's outputs

  explicit Golden(const std::string& name)
      : file(io::load_safetensors(std::string(PDYOLO_SOURCE_DIR) + "/tests/data/torch/" + name + ".safetensors")) {
    for (const auto& [key, t] : file.tensors)
      if (key.rfind("in.", 0) == 0) inputs[key.substr(3)] = t.clone().detach().set_requires_grad();
      else if (key.rfind("const.", 0) == 0) constants[key.substr(6)] = t;
  }
  const Tensor& in(const std::string& k) const { return inputs.at(k); }
  const Tensor& constant(const std::string& k) const { return constants.at(k); }
  const Tensor& tensor(const std::string& k) const { return file.tensors.at(k); }
  double param(const std::string& k) const { return std::stod(file.metadata.at(k)); }

  // Compares the output, then backpropagates the seed and compares every input's gradient.
  void check(const Tensor& out, double tolerance = 1e-5) const {
    CHECK(out.shape() == tensor("out").shape());
    CHECK(test::max_rel_diff(out, tensor("out")) < tolerance);
    for (const auto& [k, x] : inputs) x.impl()->grad.reset();
    out.backward(tensor("seed"));
    for (const auto& input : inputs) {
      const std::string& k = input.first;
      const Tensor& x = input.second;
      CAPTURE(k);
      REQUIRE(x.grad().defined());
      CHECK(test::max_rel_diff(x.grad(), tensor("grad." + k)) < 10 * tolerance);
    }
  }
};

}  // namespace pdyolo::test
