// Models for tests: a config built with random weights and, on top, random batch-norm statistics
// and implicit tensors.
#pragma once
#include <cmath>
#include <string>

#include "pdyolo/models/weights.hpp"

namespace pdyolo::test {

// Every batch norm's statistics and affine parameters, and every implicit, drawn at random, so that
// no channel is silent by accident and the implicit folding is exercised.
inline models::YoloModel randomised_model(const std::string& cfg, uint64_t seed, int64_t nc = 3) {
  models::YoloModel m = models::build_yolo(models::load_model_config(cfg, nc), {false, seed});
  Generator gen(seed + 1);
  for (graph::Node& n : m.graph.nodes) {
    if (n.op == graph::Op::batch_norm) {
      const int64_t c = n.tensor("weight").numel();
      n.tensor("weight") = Tensor::uniform({c}, 0.5f, 1.5f, gen);
      n.tensor("bias") = Tensor::uniform({c}, -0.5f, 0.5f, gen);
      n.tensor("running_mean") = Tensor::uniform({c}, -0.2f, 0.2f, gen);
      n.tensor("running_var") = Tensor::uniform({c}, 0.5f, 2.0f, gen);
    }
    if (n.op == graph::Op::implicit_add || n.op == graph::Op::implicit_mul)
      n.tensor("implicit") = Tensor::uniform(n.tensor("implicit").shape(), n.op == graph::Op::implicit_add ? -0.5f : 0.5f,
                                             n.op == graph::Op::implicit_add ? 0.5f : 1.5f, gen);
  }
  return m;
}

// 8-bit images [n, 3, size, size]: every pixel k/255.
inline Tensor eight_bit_images(int64_t n, int64_t size, uint64_t seed) {
  Generator gen(seed);
  Tensor x = Tensor::uniform({n, 3, size, size}, 0.0f, 1.0f, gen);
  for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::nearbyint(x.data<float>()[i] * 255.0f) / 255.0f;
  return x;
}

}  // namespace pdyolo::test
