// The pointwise activations a convolution block ends with, as plain functions of one value, so
// fused kernels (batch norm + activation) can apply them and their derivatives inside their loops.
#pragma once
#include <algorithm>
#include <cmath>

namespace pdyolo {

enum class Activation { identity, silu, leaky_relu, relu };

namespace kernels {

struct ActivationFn {
  Activation kind = Activation::identity;
  float slope = 0.1f;  // leaky_relu only
};

// Sigmoid without overflow for large |z| (the one every op and kernel uses).
inline float sigmoid_of(float z) {
  if (z >= 0.0f) return 1.0f / (1.0f + std::exp(-z));
  const float e = std::exp(z);
  return e / (1.0f + e);
}

// Loops over these vectorise when the compiler may if-convert float comparisons: GCC needs
// -fno-trapping-math for that (the pdyolo CMake target adds it; clang's default already allows it).
//
// Calls body(f, df) with f(z) = the activation and df(z) = its derivative as lambdas of one
// value, chosen once, so the loops in `body` are specialised (and vectorised) per activation.
template <class Body>
void with_activation(ActivationFn a, const Body& body) {
  switch (a.kind) {
    case Activation::identity:
      body([](float z) { return z; }, [](float) { return 1.0f; });
      return;
    case Activation::relu:
      body([](float z) { return std::max(z, 0.0f); }, [](float z) { return z > 0.0f ? 1.0f : 0.0f; });
      return;
    case Activation::leaky_relu: {
      const float slope = a.slope;
      body([slope](float z) { return z > 0.0f ? z : z * slope; }, [slope](float z) { return z > 0.0f ? 1.0f : slope; });
      return;
    }
    case Activation::silu:
      body([](float z) { return z * sigmoid_of(z); },
           [](float z) {
             const float s = sigmoid_of(z);
             return s * (1.0f + z * (1.0f - s));
           });
      return;
  }
}

}  // namespace kernels
}  // namespace pdyolo
