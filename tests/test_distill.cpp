// Knowledge-distillation losses (distill/losses.hpp): values and gradients against PyTorch computing
// the same formulas (tests/data/make_torch_fixtures.py), finite differences, and clear errors.
#include "test_main.hpp"

#include "pdyolo/autograd/grad_check.hpp"
#include "pdyolo/distill/losses.hpp"
#include "test_util.hpp"
#include "torch_golden.hpp"

using namespace pdyolo;
using test::Golden;

namespace {

std::vector<Tensor> levels(const std::map<std::string, Tensor>& m, const std::string& prefix) {
  std::vector<Tensor> out;
  for (int i = 0; m.count(prefix + std::to_string(i)); ++i) out.push_back(m.at(prefix + std::to_string(i)));
  return out;
}

// The adapters applied to the student's features, as the trainer applies them.
std::vector<Tensor> adapted(const Golden& g) {
  std::vector<Tensor> out;
  const std::vector<Tensor> features = levels(g.inputs, "f"), adapters = levels(g.inputs, "a");
  for (size_t i = 0; i < features.size(); ++i) out.push_back(conv2d(features[i], adapters[i]));
  return out;
}

}  // namespace

TEST_CASE("kl, bce and mse on raw maps match PyTorch (values and gradients)") {
  for (const char* name : {"kd_kl_masked", "kd_kl_unmasked"}) {
    CAPTURE(name);
    const Golden g(name);
    const auto mask = std::string(name) == "kd_kl_masked" ? distill::KdMask::teacher_obj : distill::KdMask::none;
    g.check(distill::kl_loss(levels(g.inputs, "s"), levels(g.constants, "t"), static_cast<float>(g.param("temperature")), mask), 1e-6);
  }
  const Golden bce("kd_bce"), mse("kd_mse");
  bce.check(distill::bce_loss(levels(bce.inputs, "s"), levels(bce.constants, "t")), 1e-6);
  mse.check(distill::mse_loss(levels(mse.inputs, "s"), levels(mse.constants, "t")), 1e-6);
}

TEST_CASE("feature imitation through adapters, masked by teacher objectness, and channel-wise distillation match PyTorch") {
  const Golden feature("kd_feature"), cwd("kd_cwd");
  std::vector<Tensor> masks;
  for (const Tensor& t : levels(feature.constants, "t")) masks.push_back(distill::teacher_objectness_mask(t));
  feature.check(distill::feature_loss(adapted(feature), levels(feature.constants, "g"), masks), 1e-6);
  cwd.check(distill::cwd_loss(adapted(cwd), levels(cwd.constants, "g"), static_cast<float>(cwd.param("tau"))), 1e-6);
}

TEST_CASE("the distillation losses' gradients agree with finite differences") {
  Generator gen(7);
  const Tensor s = Tensor::uniform({1, 2, 3, 2, 7}, -2, 2, gen).set_requires_grad(), t = Tensor::uniform({1, 2, 3, 2, 7}, -2, 2, gen);
  const Tensor f = Tensor::uniform({1, 3, 3, 2}, -1, 1, gen).set_requires_grad(), a = Tensor::uniform({2, 3, 1, 1}, -1, 1, gen).set_requires_grad();
  const Tensor g = Tensor::uniform({1, 2, 3, 2}, -1, 1, gen);
  auto check = [](const std::string& what, const autograd::TestedFunction& fn, const std::vector<Tensor>& inputs) {
    CAPTURE(what);
    const autograd::GradCheckResult r = autograd::grad_check(fn, inputs);
    CHECK_MESSAGE(r.ok, r.report);
  };
  check("kl", [&](const std::vector<Tensor>& x) { return distill::kl_loss({x[0]}, {t}, 3.0f); }, {s});
  check("kl unmasked", [&](const std::vector<Tensor>& x) { return distill::kl_loss({x[0]}, {t}, 2.0f, distill::KdMask::none); }, {s});
  check("bce", [&](const std::vector<Tensor>& x) { return distill::bce_loss({x[0]}, {t}); }, {s});
  check("mse", [&](const std::vector<Tensor>& x) { return distill::mse_loss({x[0]}, {t}); }, {s});
  const Tensor mask = distill::teacher_objectness_mask(t);
  check("feature", [&](const std::vector<Tensor>& x) { return distill::feature_loss({conv2d(x[0], x[1])}, {g}, {mask}); }, {f, a});
  check("cwd", [&](const std::vector<Tensor>& x) { return distill::cwd_loss({conv2d(x[0], x[1])}, {g}, 1.5f); }, {f, a});
}

TEST_CASE("distillation losses: the teacher gets no gradient; identical outputs cost (almost) nothing; mismatches are named") {
  Generator gen(3);
  const Tensor t = Tensor::uniform({2, 3, 4, 4, 8}, -3, 3, gen);
  const Tensor s = t.clone().detach().set_requires_grad();
  const Tensor teacher = t.clone().detach().set_requires_grad();  // a teacher that wrongly still tracks gradients
  const Tensor loss = distill::kl_loss({s}, {teacher}, 3.0f) + distill::mse_loss({s}, {teacher});
  CHECK(std::fabs(loss.item()) < 1e-6f);
  loss.backward();
  CHECK_FALSE(teacher.grad().defined());
  CHECK(s.grad().defined());
  const Tensor other = Tensor::zeros({2, 3, 2, 2, 8});
  CHECK(test::error_of([&] { distill::kl_loss({s}, {other}, 3.0f); }).find("level 0: student maps [2, 3, 4, 4, 8] but teacher [2, 3, 2, 2, 8]") !=
        std::string::npos);
  CHECK(test::error_of([&] { distill::mse_loss({s, s}, {t}); }).find("2 student maps but 1 teacher maps") != std::string::npos);
  CHECK(test::error_of([&] { distill::kl_loss({s}, {t}, 0.0f); }).find("temperature must be positive") != std::string::npos);
}
