#include <pdyolo/pdyolo.hpp>

#include <cstdio>

int main() {
  pdyolo::Tensor x = pdyolo::Tensor::from_vector({1.0f, 2.0f, 3.0f}, {3}).set_requires_grad();
  pdyolo::Tensor loss = pdyolo::sum(x * x);
  loss.backward();
  const float g = x.grad().to_vector()[2];  // d(x²)/dx = 2x = 6
  std::printf("consumer: loss %.1f, grad %.1f\n", loss.item(), g);
  return (loss.item() == 14.0f && g == 6.0f) ? 0 : 1;
}
