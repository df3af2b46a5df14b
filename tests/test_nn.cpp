// Modules: hierarchical names, state dicts, train/eval, initialisation, hooks; SGD; the demo.
#include "test_main.hpp"

#include "shapes_demo.hpp"
#include "test_util.hpp"

using namespace pdyolo;

namespace {

// YOLOv7's Conv block: conv (no bias) → bn → act, with the official child names.
class ConvBlock : public nn::Module {
 public:
  ConvBlock(int64_t c1, int64_t c2, int64_t k) {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(nn::Conv2dOptions{c1, c2, k, 1, k / 2, 1, 1, false}));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(c2));
    act = register_module("act", nn::SiLU());
  }
  Tensor forward(const Tensor& x) override { return (*act)((*bn)((*conv)(x))); }
  std::string type_name() const override { return "Conv"; }
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  std::shared_ptr<nn::Module> act;
};

class TinyModel : public nn::Module {
 public:
  TinyModel() {
    auto seq = std::make_shared<nn::Sequential>();
    seq->push_back(std::make_shared<ConvBlock>(3, 4, 3));
    seq->push_back(nn::MaxPool2d(2));
    seq->push_back(std::make_shared<ConvBlock>(4, 8, 1));
    model = register_module("model", seq);
  }
  Tensor forward(const Tensor& x) override { return (*model)(x); }
  std::string type_name() const override { return "TinyModel"; }
  std::shared_ptr<nn::Sequential> model;
};

}  // namespace

TEST_CASE("parameter and buffer names follow the official checkpoint layout") {
  TinyModel m;
  std::vector<std::string> names;
  for (auto& [name, t] : m.named_parameters()) names.push_back(name);
  CHECK(names == std::vector<std::string>{"model.0.conv.weight", "model.0.bn.weight", "model.0.bn.bias",
                                          "model.2.conv.weight", "model.2.bn.weight", "model.2.bn.bias"});
  const auto sd = m.state_dict();
  CHECK(sd.count("model.0.bn.running_mean"));
  CHECK(sd.count("model.2.bn.running_var"));
  CHECK(sd.at("model.2.bn.num_batches_tracked").dtype() == DType::i64);
  CHECK(sd.size() == 6 + 6);
  CHECK(m.parameter_count() == 3 * 4 * 9 + 4 + 4 + 4 * 8 + 8 + 8);
  CHECK(sd.at("model.0.conv.weight").requires_grad());
}

TEST_CASE("state_dict round trip and load errors") {
  manual_seed(1);
  TinyModel a;
  manual_seed(2);
  TinyModel b;
  const Tensor x = Tensor::normal({1, 3, 8, 8});
  a.eval();
  b.eval();
  CHECK(test::max_rel_diff(a(x), b(x)) > 1e-3);
  b.load_state_dict(a.state_dict());
  CHECK(test::max_rel_diff(a(x), b(x)) == 0.0);
  // Loading copies values: the module's own tensors (and so the optimizer's handles) stay the same objects.
  CHECK(b.named_parameters()[0].second.same_as(b.model->children()[0].second->named_parameters()[0].second));

  auto sd = a.state_dict();
  sd["model.0.conv.weight"] = Tensor::zeros({4, 3, 1, 1});
  const std::string err = test::error_of([&] { b.load_state_dict(sd); });
  CHECK(err.find("model.0.conv.weight") != std::string::npos);
  CHECK(err.find("[4, 3, 1, 1]") != std::string::npos);
  CHECK(err.find("[4, 3, 3, 3]") != std::string::npos);
  sd = a.state_dict();
  sd.erase("model.2.bn.bias");
  CHECK(test::error_of([&] { b.load_state_dict(sd); }).find("missing entry 'model.2.bn.bias'") != std::string::npos);
  b.load_state_dict(sd, /*strict=*/false);
  sd = a.state_dict();
  sd["extra"] = Tensor::zeros({1});
  CHECK(test::error_of([&] { b.load_state_dict(sd); }).find("unexpected entry 'extra'") != std::string::npos);
}

TEST_CASE("train() and eval() switch BatchNorm between batch and running statistics") {
  nn::BatchNorm2d bn(2);
  CHECK(bn.eps == doctest::Approx(1e-3f));
  CHECK(bn.momentum == doctest::Approx(0.03f));
  const Tensor x = Tensor::normal({4, 2, 3, 3}, 5.0f, 2.0f);
  bn.train();
  bn(x);
  CHECK(bn.running_mean.to_vector()[0] == doctest::Approx(0.03 * mean(x.narrow(1, 0, 1)).item()).epsilon(1e-4));
  CHECK(bn.num_batches_tracked.at({}) == 1.0);
  bn.eval();
  const Tensor y = bn(x);
  const float expected = (x.at({0, 0, 0, 0}) - bn.running_mean.to_vector()[0]) / std::sqrt(bn.running_var.to_vector()[0] + 1e-3f);
  CHECK(y.at({0, 0, 0, 0}) == doctest::Approx(expected).epsilon(1e-5));
  CHECK(bn.num_batches_tracked.at({}) == 1.0);

  TinyModel m;
  m.eval();
  CHECK_FALSE(m.model->children()[0].second->children()[1].second->is_training());
  m.train();
  CHECK(m.model->children()[0].second->children()[1].second->is_training());
}

TEST_CASE("PyTorch-default initialisation: uniform within 1/sqrt(fan_in)") {
  nn::Conv2d conv({16, 32, 3});
  const float bound = 1.0f / std::sqrt(16.0f * 9.0f);
  const auto w = conv.weight.to_vector();
  float lo = 1, hi = -1;
  for (float v : w) lo = std::min(lo, v), hi = std::max(hi, v);
  CHECK(lo >= -bound);
  CHECK(hi <= bound);
  CHECK(hi > 0.9f * bound);  // actually spread over the range
  CHECK(lo < -0.9f * bound);
  const auto b = conv.bias.to_vector();
  CHECK(*std::max_element(b.begin(), b.end()) <= bound);
  nn::Linear lin(10, 3);
  CHECK(lin.forward(Tensor::ones({2, 10})).shape() == Shape{2, 3});
}

TEST_CASE("forward hooks see and may replace outputs") {
  nn::Conv2d conv({1, 1, 1});
  int calls = 0;
  conv.register_forward_hook([&](nn::Module& m, const Tensor&, const Tensor& y) {
    ++calls;
    CHECK(m.type_name() == "Conv2d");
    return y * 0.0f;  // e.g. a fake-quant would return the quantised activation
  });
  const Tensor y = conv(Tensor::ones({1, 1, 2, 2}));
  CHECK(calls == 1);
  CHECK(sum(abs(y)).item() == 0.0f);
  conv.clear_forward_hooks();
  conv(Tensor::ones({1, 1, 2, 2}));
  CHECK(calls == 1);
}

TEST_CASE("SGD matches torch.optim.SGD step by step") {
  // p = 1, constant gradient 1 (loss = p), lr 0.1, momentum 0.9, weight decay 0.1.
  // d = g + wd·p; buf = d (first step) then 0.9·buf + d; plain: p -= lr·buf; nesterov: p -= lr·(d + 0.9·buf).
  for (bool nesterov : {false, true}) {
    CAPTURE(nesterov);
    Tensor p = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
    train::Optimizer opt({p}, {0.1, 0.9, 0.1, nesterov});
    double pv = 1.0, buf = 0.0;
    for (int step = 0; step < 4; ++step) {
      opt.zero_grad();
      sum(p).backward();
      opt.step();
      const double d = 1.0 + 0.1 * pv;
      buf = step == 0 ? d : 0.9 * buf + d;
      pv -= 0.1 * (nesterov ? d + 0.9 * buf : buf);
      CHECK(p.item() == doctest::Approx(pv).epsilon(1e-6));
    }
  }
  Tensor q = Tensor::from_vector({2.0f}, {1}).set_requires_grad();
  train::Optimizer plain({q}, {0.5});
  sum(q * q).backward();
  plain.step();
  CHECK(q.item() == doctest::Approx(0.0f));  // 2 − 0.5·4
  CHECK(test::error_of([&] { train::Optimizer({q}, {0.1, 0.0, 0.0, true}); }).find("nesterov") != std::string::npos);
}

TEST_CASE("parameter groups have their own settings") {
  Tensor a = Tensor::from_vector({1.0f}, {1}).set_requires_grad(), b = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
  train::Optimizer opt({a}, {0.1});
  opt.add_param_group({b}, {0.1, 0.0, 1.0});  // with weight decay
  sum(a + b).backward();
  opt.step();
  CHECK(a.item() == doctest::Approx(0.9f));
  CHECK(b.item() == doctest::Approx(0.8f));
  opt.groups[0].options.lr = 0.0;
  opt.zero_grad();
  sum(a + b).backward();
  opt.step();
  CHECK(a.item() == doctest::Approx(0.9f));
}

TEST_CASE("the synthetic demo trains: loss falls and accuracy rises") {
  examples::ShapesDemoOptions options;
  options.epochs = 4;
  options.seed = 3;
  const auto history = examples::run_shapes_demo(options, nullptr);
  REQUIRE(history.size() == 4);
  CHECK(history.back().loss < 0.3 * history.front().loss);
  CHECK(history.back().accuracy > 0.8);
  // Same seed, same thread count → the same run.
  const auto again = examples::run_shapes_demo(options, nullptr);
  CHECK(again.back().loss == history.back().loss);
}
