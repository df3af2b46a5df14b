// Every op: forward values on hand-checked cases, a finite-difference gradient check on both CPU
// backends, and clear errors for bad shapes.
#include "test_main.hpp"

#include "test_util.hpp"

using namespace pdyolo;
using Inputs = std::vector<Tensor>;

namespace {

Tensor param(const Shape& shape, uint64_t seed, float low = -1.0f, float high = 1.0f) {
  Generator gen(seed);
  return Tensor::uniform(shape, low, high, gen).set_requires_grad();
}

// Values at least `gap` away from 0 (for ops with a kink at 0).
Tensor param_away_from_zero(const Shape& shape, uint64_t seed, float gap = 0.1f) {
  Tensor t = param(shape, seed);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) p[i] = p[i] >= 0 ? p[i] + gap : p[i] - gap;
  return t;
}

void check_gradients(const char* name, const autograd::TestedFunction& f, const Inputs& inputs,
                     autograd::GradCheckOptions options = {}) {
  for (Backend backend : test::compute_backends()) {
    BackendScope scope(backend);
    const auto result = autograd::grad_check(f, inputs, options);
    INFO(name, " on backend ", backend_name(backend), ": ", result.report);
    CHECK(result.ok);
  }
}

}  // namespace

TEST_CASE("binary ops broadcast and differentiate") {
  CHECK((Tensor::from_vector({1, 2, 3}, {3}) + Tensor::from_vector({10, 20}, {2, 1})).to_vector() ==
        std::vector<float>{11, 12, 13, 21, 22, 23});
  CHECK((Tensor::from_vector({6, 8}, {2}) / 2.0f).to_vector() == std::vector<float>{3, 4});
  CHECK((1.0f - Tensor::from_vector({1, 2}, {2})).to_vector() == std::vector<float>{0, -1});
  const std::string err = test::error_of([] { Tensor::zeros({2, 3}) + Tensor::zeros({4}); });
  CHECK(err.find("add") != std::string::npos);
  CHECK(err.find("[2, 3]") != std::string::npos);
  CHECK(err.find("[4]") != std::string::npos);

  Tensor a = param({2, 3, 4}, 1), b = param({3, 1}, 2), c = param_away_from_zero({4}, 3, 0.5f);
  check_gradients("add", [](const Inputs& in) { return in[0] + in[1]; }, {a, b});
  check_gradients("sub", [](const Inputs& in) { return in[0] - in[1]; }, {a, b});
  check_gradients("mul", [](const Inputs& in) { return in[0] * in[1]; }, {a, b});
  check_gradients("div", [](const Inputs& in) { return in[0] / in[1]; }, {a, c});
  check_gradients("scalar ops", [](const Inputs& in) { return (2.0f * in[0] - 1.0f) / 3.0f + 0.5f; }, {a});
}

TEST_CASE("minimum and maximum pick elements and route gradients") {
  Tensor a = Tensor::from_vector({1, 5, 3}, {3}), b = Tensor::from_vector({4, 2, 3}, {3});
  CHECK(maximum(a, b).to_vector() == std::vector<float>{4, 5, 3});
  CHECK(minimum(a, b).to_vector() == std::vector<float>{1, 2, 3});
  Tensor x = param({3, 4}, 4), y = param({4}, 5);
  check_gradients("maximum", [](const Inputs& in) { return maximum(in[0], in[1]); }, {x, y});
  check_gradients("minimum", [](const Inputs& in) { return minimum(in[0], in[1]); }, {x, y});
  Tensor p = Tensor::from_vector({2.0f}, {1}).set_requires_grad(), q = Tensor::from_vector({2.0f}, {1}).set_requires_grad();
  sum(maximum(p, q)).backward();
  CHECK(p.grad().item() == 0.5f);  // a tie splits the gradient
  CHECK(q.grad().item() == 0.5f);
}

TEST_CASE("unary ops: values and gradients") {
  Tensor v = Tensor::from_vector({-2.0f, 0.0f, 3.0f}, {3});
  auto close = [](const Tensor& t, std::vector<float> want) {
    const auto got = t.to_vector();
    for (size_t i = 0; i < want.size(); ++i) CHECK(got[i] == doctest::Approx(want[i]).epsilon(1e-6));
  };
  close(relu(v), {0, 0, 3});
  close(leaky_relu(v, 0.1f), {-0.2f, 0, 3});
  close(sigmoid(v), {0.11920292f, 0.5f, 0.95257413f});
  close(silu(v), {-0.23840584f, 0, 2.85772238f});
  close(tanh(v), {-0.96402758f, 0, 0.99505475f});
  close(atan(v), {-1.10714872f, 0, 1.24904577f});
  close(abs(v), {2, 0, 3});
  close(clamp(v, -1.0f, 1.0f), {-1, 0, 1});
  close(exp(v), {0.13533528f, 1, 20.08553692f});
  close(pow(Tensor::from_vector({2, 3}, {2}), 3.0f), {8, 27});
  close(sqrt(Tensor::from_vector({4, 9}, {2})), {2, 3});
  close(log(Tensor::from_vector({1, std::exp(2.0f)}, {2})), {0, 2});
  close(sigmoid(Tensor::from_vector({-100.0f, 100.0f}, {2})), {0, 1});  // no overflow

  Tensor x = param_away_from_zero({2, 5}, 6), pos = param({2, 5}, 7, 0.5f, 2.0f);
  check_gradients("neg", [](const Inputs& in) { return -in[0]; }, {x});
  check_gradients("exp", [](const Inputs& in) { return exp(in[0]); }, {x});
  check_gradients("log", [](const Inputs& in) { return log(in[0]); }, {pos});
  check_gradients("sqrt", [](const Inputs& in) { return sqrt(in[0]); }, {pos});
  check_gradients("abs", [](const Inputs& in) { return abs(in[0]); }, {x});
  check_gradients("sigmoid", [](const Inputs& in) { return sigmoid(in[0]); }, {x});
  check_gradients("tanh", [](const Inputs& in) { return tanh(in[0]); }, {x});
  check_gradients("atan", [](const Inputs& in) { return atan(in[0] * 2.0f); }, {x});
  check_gradients("relu", [](const Inputs& in) { return relu(in[0]); }, {x});
  check_gradients("leaky_relu", [](const Inputs& in) { return leaky_relu(in[0], 0.1f); }, {x});
  check_gradients("silu", [](const Inputs& in) { return silu(in[0] * 3.0f); }, {x});
  check_gradients("pow", [](const Inputs& in) { return pow(in[0], 2.5f); }, {pos});
  check_gradients("clamp", [](const Inputs& in) { return clamp(in[0], -0.5f, 0.6f); }, {x});
  CHECK(test::error_of([&] { clamp(x, 1.0f, 0.0f); }).find("greater than") != std::string::npos);
}

TEST_CASE("sum and mean over all elements or one axis") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  CHECK(sum(t).item() == 21.0f);
  CHECK(mean(t).item() == 3.5f);
  CHECK(sum(t, 0).to_vector() == std::vector<float>{5, 7, 9});
  CHECK(sum(t, 1).shape() == Shape{2});
  CHECK(sum(t, -1, true).shape() == Shape{2, 1});
  CHECK(mean(t, 1).to_vector() == std::vector<float>{2, 5});
  Tensor x = param({2, 3, 4}, 8);
  check_gradients("sum", [](const Inputs& in) { return sum(in[0]); }, {x});
  check_gradients("sum axis", [](const Inputs& in) { return sum(in[0], 1); }, {x});
  check_gradients("mean axis keepdim", [](const Inputs& in) { return mean(in[0], -1, true); }, {x});
  check_gradients("mean", [](const Inputs& in) { return mean(in[0] * in[0]); }, {x});
  CHECK(test::error_of([&] { sum(x, 3); }).find("axis 3 is out of range") != std::string::npos);
}

TEST_CASE("softmax and log_softmax") {
  Tensor t = Tensor::from_vector({1, 2, 3, 1, 1, 1}, {2, 3});
  const auto s = softmax(t, 1).to_vector();
  CHECK(s[0] == doctest::Approx(0.09003057));
  CHECK(s[2] == doctest::Approx(0.66524096));
  CHECK(s[4] == doctest::Approx(1.0 / 3));
  CHECK(log_softmax(Tensor::from_vector({1000, 0}, {2}), 0).to_vector()[1] == doctest::Approx(-1000.0f));  // stable
  Tensor x = param({3, 4, 2}, 9, -2, 2);
  check_gradients("softmax axis 1", [](const Inputs& in) { return softmax(in[0], 1); }, {x});
  check_gradients("log_softmax axis -1", [](const Inputs& in) { return log_softmax(in[0], -1); }, {x});
}

TEST_CASE("matmul") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3}), b = Tensor::from_vector({1, 0, 0, 1, 1, 1}, {3, 2});
  CHECK(matmul(a, b).to_vector() == std::vector<float>{4, 5, 10, 11});
  CHECK(matmul(a, a.transpose(0, 1)).to_vector() == std::vector<float>{14, 32, 32, 77});
  const std::string err = test::error_of([&] { matmul(a, a); });
  CHECK(err.find("matmul") != std::string::npos);
  CHECK(err.find("[2, 3] by [2, 3]") != std::string::npos);
  Tensor x = param({5, 7}, 10), y = param({7, 3}, 11);
  check_gradients("matmul", [](const Inputs& in) { return matmul(in[0], in[1]); }, {x, y});
  check_gradients("matmul transposed", [](const Inputs& in) { return matmul(in[1].transpose(0, 1), in[0].transpose(0, 1)); },
                  {x, y});
}

TEST_CASE("conv2d: values, every option, gradients, errors") {
  // 1 channel 3×3 input, 2×2 all-ones kernel: each output is a window sum.
  Tensor img = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  CHECK(conv2d(img, Tensor::ones({1, 1, 2, 2})).to_vector() == std::vector<float>{12, 16, 24, 28});
  CHECK(conv2d(img, Tensor::ones({1, 1, 2, 2}), Tensor::from_vector({1}, {1}), Conv2dParams().stride(2).padding(1))
            .to_vector() == std::vector<float>{2, 6, 12, 29});

  struct Case {
    const char* name;
    Shape x, w;
    Conv2dParams p;
    bool bias;
  };
  const Case cases[] = {
      {"3x3 pad 1", {2, 3, 5, 6}, {4, 3, 3, 3}, Conv2dParams().padding(1), true},
      {"stride 2", {1, 2, 7, 7}, {3, 2, 3, 3}, Conv2dParams().stride(2).padding(1), true},
      {"dilation 2", {1, 2, 7, 6}, {2, 2, 3, 3}, Conv2dParams().dilation(2).padding(2), false},
      {"groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, Conv2dParams().with_groups(2).padding(1), true},
      {"depthwise", {1, 3, 4, 4}, {3, 1, 3, 3}, Conv2dParams().with_groups(3), false},
      {"1x1", {2, 3, 4, 5}, {5, 3, 1, 1}, Conv2dParams(), true},
      {"1x1 stride 2", {1, 3, 5, 5}, {2, 3, 1, 1}, Conv2dParams().stride(2), true},
      {"rectangular", {1, 2, 6, 5}, {3, 2, 1, 3}, [] { Conv2dParams p; p.pad_w = 1; p.stride_h = 2; return p; }(), true},
  };
  uint64_t seed = 20;
  for (const Case& c : cases) {
    CAPTURE(c.name);
    Tensor x = param(c.x, seed++), w = param(c.w, seed++), b = c.bias ? param({c.w[0]}, seed++) : Tensor();
    const Conv2dParams p = c.p;
    Inputs inputs{x, w};
    if (c.bias) inputs.push_back(b);
    check_gradients(c.name, [p](const Inputs& in) { return conv2d(in[0], in[1], in.size() > 2 ? in[2] : Tensor(), p); },
                    inputs);
  }
  const std::string err = test::error_of([] { conv2d(Tensor::zeros({1, 3, 8, 8}), Tensor::zeros({4, 2, 3, 3})); });
  CHECK(err.find("conv2d") != std::string::npos);
  CHECK(err.find("[1, 3, 8, 8]") != std::string::npos);
  CHECK(err.find("[4, 2, 3, 3]") != std::string::npos);
  CHECK(test::error_of([] { conv2d(Tensor::zeros({1, 1, 2, 2}), Tensor::zeros({1, 1, 3, 3})); }).find("smaller than") !=
        std::string::npos);
  CHECK(test::error_of([] { conv2d(Tensor::zeros({1, 1, 4, 4}), Tensor::zeros({2, 1, 3, 3}), Tensor::zeros({3})); })
            .find("bias [3]") != std::string::npos);
}

TEST_CASE("batch_norm2d: batch statistics, running update, eval mode, gradients") {
  // Channel 0 holds {1, 3}, channel 1 holds {2, 6}: batch means 2 and 4, biased variances 1 and 4.
  Tensor x = Tensor::from_vector({1, 2, 3, 6}, {2, 2, 1, 1});
  Tensor w = Tensor::ones({2}), b = Tensor::zeros({2}), rm = Tensor::zeros({2}), rv = Tensor::ones({2});
  Tensor y = batch_norm2d(x, w, b, rm, rv, {true, 0.1f, 0.0f});
  const auto yv = y.to_vector();
  CHECK(yv[0] == doctest::Approx(-1.0f));
  CHECK(yv[3] == doctest::Approx(1.0f));
  // running = 0.9·running + 0.1·batch, with the unbiased variance (n/(n−1) = 2).
  CHECK(rm.to_vector()[0] == doctest::Approx(0.2f));
  CHECK(rm.to_vector()[1] == doctest::Approx(0.4f));
  CHECK(rv.to_vector()[0] == doctest::Approx(0.9f + 0.1f * 2.0f));
  CHECK(rv.to_vector()[1] == doctest::Approx(0.9f + 0.1f * 8.0f));
  // Eval uses the running statistics.
  Tensor e = batch_norm2d(Tensor::from_vector({0.2f, 0.4f}, {1, 2, 1, 1}), w, b, rm, rv, {false, 0.1f, 0.0f});
  CHECK(e.to_vector()[0] == doctest::Approx(0.0f));
  CHECK(rm.to_vector()[0] == doctest::Approx(0.2f));  // unchanged in eval

  Tensor xg = param({3, 2, 3, 2}, 40, -2, 2), wg = param({2}, 41, 0.5f, 1.5f), bg = param({2}, 42);
  for (bool training : {true, false}) {
    Tensor rm2 = Tensor::from_vector({0.1f, -0.2f}, {2}), rv2 = Tensor::from_vector({1.5f, 0.7f}, {2});
    const BatchNormParams p{training, 0.0f, 1e-3f};  // momentum 0 keeps running stats fixed across evaluations
    check_gradients(training ? "batch_norm2d train" : "batch_norm2d eval",
                    [&](const Inputs& in) { return batch_norm2d(in[0], in[1], in[2], rm2, rv2, p); }, {xg, wg, bg});
  }
  // With the activation fused in (one kernel on the cpu backend, two ops on ref). SiLU is smooth;
  // the kinked activations are compared with the reference ops in test_kernels.
  {
    Tensor rm2 = Tensor::from_vector({0.1f, -0.2f}, {2}), rv2 = Tensor::from_vector({1.5f, 0.7f}, {2});
    check_gradients("batch_norm_act2d silu", [&](const Inputs& in) {
      return batch_norm_act2d(in[0], in[1], in[2], rm2, rv2, {true, 0.0f, 1e-3f}, {Activation::silu, 0.1f});
    }, {xg, wg, bg});
  }
  CHECK(test::error_of([] {
          batch_norm2d(Tensor::zeros({2, 3, 2, 2}), Tensor::ones({2}), Tensor::zeros({2}), Tensor::zeros({2}),
                       Tensor::ones({2}));
        }).find("[2, 3, 2, 2]") != std::string::npos);
  CHECK(test::error_of([] {
          batch_norm2d(Tensor::zeros({1, 1, 1, 1}), Tensor::ones({1}), Tensor::zeros({1}), Tensor::zeros({1}),
                       Tensor::ones({1}));
        }).find("more than one value") != std::string::npos);
}

TEST_CASE("max_pool2d and nearest upsample") {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, {1, 1, 4, 4});
  CHECK(max_pool2d(t, {2}).to_vector() == std::vector<float>{6, 8, 14, 16});
  CHECK(max_pool2d(t, {3, 1, 1}).shape() == Shape{1, 1, 4, 4});  // YOLOv7's SP: same size
  CHECK(max_pool2d(t, {3, 1, 1}).to_vector()[0] == 6.0f);
  CHECK(upsample_nearest(Tensor::from_vector({1, 2, 3, 4}, {1, 1, 2, 2}), 2).to_vector() ==
        std::vector<float>{1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4});
  Tensor x = param({2, 2, 5, 5}, 50);  // distinct random values: no ties inside a window
  check_gradients("max_pool2d 2x2", [](const Inputs& in) { return max_pool2d(in[0], {2}); }, {x});
  check_gradients("max_pool2d 5 s1 p2", [](const Inputs& in) { return max_pool2d(in[0], {5, 1, 2}); }, {x});
  check_gradients("max_pool2d 3 s2 p1", [](const Inputs& in) { return max_pool2d(in[0], {3, 2, 1}); }, {x});
  check_gradients("upsample x2", [](const Inputs& in) { return upsample_nearest(in[0], 2); }, {x});
  check_gradients("upsample x3", [](const Inputs& in) { return upsample_nearest(in[0], 3); }, {x});
  CHECK(test::error_of([&] { max_pool2d(x, {2, 2, 2}); }).find("half the kernel") != std::string::npos);
  CHECK(test::error_of([&] { upsample_nearest(x, 0); }).find("positive integer") != std::string::npos);
}

TEST_CASE("reorg: the reference's space-to-depth order, its gradient, and even sizes only") {
  // x[0, 0] = 0…15 over 4×4: phase (0,0) takes rows 0, 2 and columns 0, 2; then (1,0), (0,1), (1,1).
  std::vector<float> v(16);
  for (int i = 0; i < 16; ++i) v[static_cast<size_t>(i)] = static_cast<float>(i);
  const Tensor y = reorg(Tensor::from_vector(v, {1, 1, 4, 4}));
  CHECK(y.shape() == Shape{1, 4, 2, 2});
  CHECK(y.to_vector() == std::vector<float>{0, 2, 8, 10, 4, 6, 12, 14, 1, 3, 9, 11, 5, 7, 13, 15});
  // Two channels: output channel k·C + c is phase k of channel c.
  const Tensor two = reorg(Tensor::from_vector(std::vector<float>{0, 1, 2, 3, 10, 11, 12, 13}, {1, 2, 2, 2}));
  CHECK(two.to_vector() == std::vector<float>{0, 10, 2, 12, 1, 11, 3, 13});
  Tensor x = param({2, 3, 4, 6}, 51);
  check_gradients("reorg", [](const Inputs& in) { return reorg(in[0]); }, {x});
  CHECK(test::error_of([] { reorg(Tensor::zeros({1, 2, 4, 5})); }).find("reorg: height and width must be even") != std::string::npos);
}

TEST_CASE("concat and split along any axis") {
  Tensor a = Tensor::from_vector({1, 2, 3, 4}, {2, 2}), b = Tensor::from_vector({5, 6}, {2, 1});
  CHECK(concat({a, b}, 1).to_vector() == std::vector<float>{1, 2, 5, 3, 4, 6});
  CHECK(concat({a, a}, 0).shape() == Shape{4, 2});
  auto parts = split(Tensor::from_vector({0, 1, 2, 3, 4, 5}, {6}), {1, 2, 3}, 0);
  CHECK(parts[2].to_vector() == std::vector<float>{3, 4, 5});
  CHECK(test::error_of([&] { concat({a, b}, 0); }).find("concat") != std::string::npos);
  CHECK(test::error_of([&] { split(a, {1, 2}, 0); }).find("add up to 3") != std::string::npos);

  Tensor x = param({2, 3, 4}, 60), y = param({2, 2, 4}, 61), z = param({2, 1, 4}, 62);
  for (int64_t axis : {0, 1, 2}) {
    CAPTURE(axis);
    Tensor other = param({axis == 0 ? 1 : 2, axis == 1 ? 1 : 3, axis == 2 ? 1 : 4}, 63);
    check_gradients("concat", [axis](const Inputs& in) { return concat({in[0], in[1]}, axis); }, {x, other});
    check_gradients("split", [axis](const Inputs& in) {
      const int64_t n = in[0].shape()[axis];
      auto p = split(in[0], {1, n - 1}, axis);
      return p[1] * 2.0f + sum(p[0]);
    }, {x});
  }
  check_gradients("concat three", [](const Inputs& in) { return concat({in[0], in[1], in[2]}, 1); }, {x, y, z});
}

TEST_CASE("views are differentiable") {
  Tensor x = param({2, 3, 4}, 70);
  check_gradients("reshape", [](const Inputs& in) { return in[0].reshape({4, -1}) * 2.0f; }, {x});
  check_gradients("permute", [](const Inputs& in) { return in[0].permute({2, 0, 1}).contiguous(); }, {x});
  check_gradients("narrow", [](const Inputs& in) { return in[0].narrow(2, 1, 2); }, {x});
  check_gradients("expand", [](const Inputs& in) { return in[0].narrow(1, 0, 1).expand({2, 5, 4}) * 1.0f; }, {x});
  check_gradients("clone", [](const Inputs& in) { return in[0].clone(); }, {x});
}

TEST_CASE("losses: BCE with logits, MSE, KL divergence") {
  // Hand values: BCE(x=0, t=1) = log 2; with pos_weight 3 it is 3·log 2.
  Tensor zero = Tensor::zeros({1}), one = Tensor::ones({1});
  CHECK(bce_with_logits(zero, one).item() == doctest::Approx(std::log(2.0)));
  CHECK(bce_with_logits(zero, one, {3.0f}).item() == doctest::Approx(3 * std::log(2.0)));
  CHECK(bce_with_logits(Tensor::from_vector({100.0f}, {1}), zero).item() == doctest::Approx(100.0f));  // stable
  CHECK(mse_loss(Tensor::from_vector({1, 3}, {2}), Tensor::from_vector({0, 0}, {2})).item() == 5.0f);
  CHECK(mse_loss(Tensor::from_vector({1, 3}, {2}), Tensor::zeros({2}), Reduction::sum).item() == 10.0f);
  // KL(p ‖ q) with p = [0.5, 0.5], q = [0.25, 0.75].
  Tensor logq = log(Tensor::from_vector({0.25f, 0.75f}, {1, 2})), p = Tensor::from_vector({0.5f, 0.5f}, {1, 2});
  const double kl = 0.5 * std::log(0.5 / 0.25) + 0.5 * std::log(0.5 / 0.75);
  CHECK(kl_div(logq, p, Reduction::sum).item() == doctest::Approx(kl));
  CHECK(kl_div(logq, p, Reduction::batchmean).item() == doctest::Approx(kl));
  CHECK(kl_div(logq, log(p), Reduction::sum, true).item() == doctest::Approx(kl));
  CHECK(kl_div(logq, Tensor::from_vector({0.0f, 1.0f}, {1, 2}), Reduction::sum).item() ==
        doctest::Approx(-std::log(0.75)));  // 0·log 0 counts as 0
  CHECK(test::error_of([] { bce_with_logits(Tensor::zeros({2}), Tensor::zeros({3})); }).find("same shape") !=
        std::string::npos);

  Tensor x = param({3, 4}, 80, -3, 3), t = param({3, 4}, 81, 0, 1);
  for (Reduction r : {Reduction::none, Reduction::mean, Reduction::sum}) {
    check_gradients("bce", [r](const Inputs& in) { return bce_with_logits(in[0], in[1], {1.0f, r}); }, {x, t});
    check_gradients("bce pos_weight", [r](const Inputs& in) { return bce_with_logits(in[0], in[1], {2.5f, r}); }, {x, t});
    check_gradients("mse", [r](const Inputs& in) { return mse_loss(in[0], in[1], r); }, {x, t});
  }
  Tensor logits_s = param({3, 5}, 82, -2, 2), logits_t = param({3, 5}, 83, -2, 2);
  for (Reduction r : {Reduction::none, Reduction::batchmean, Reduction::sum, Reduction::mean}) {
    check_gradients("kl_div", [r](const Inputs& in) { return kl_div(log_softmax(in[0], 1), softmax(in[1], 1), r); },
                    {logits_s, logits_t});
    check_gradients("kl_div log_target", [r](const Inputs& in) {
      return kl_div(log_softmax(in[0], 1), log_softmax(in[1], 1), r, true);
    }, {logits_s, logits_t});
  }
  // KD as the pipeline uses it: T² · KL(softmax(t/T) ‖ softmax(s/T)), T = 3.
  check_gradients("distillation loss", [](const Inputs& in) {
    const float T = 3.0f;
    return kl_div(log_softmax(in[0] / T, 1), softmax(in[1] / T, 1), Reduction::batchmean) * (T * T);
  }, {logits_s, logits_t});
}

TEST_CASE("gather_rows picks rows and adds gradients back, repeats included") {
  Tensor x = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {3, 2});
  CHECK(gather_rows(x, {2, 0, 2}).to_vector() == std::vector<float>{5, 6, 1, 2, 5, 6});
  Tensor p = param({4, 3}, 90);
  check_gradients("gather_rows", [](const Inputs& in) { return gather_rows(in[0], {3, 1, 3, 0}); }, {p});
  CHECK(test::error_of([&] { gather_rows(x, {3}); }).find("outside [0, 3)") != std::string::npos);
}
