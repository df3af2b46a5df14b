// The tape: requires_grad, accumulation, seeds, no_grad, detach, zero_grad, freeing the graph.
#include "test_main.hpp"

#include "test_util.hpp"

using namespace pdyolo;

TEST_CASE("backward from a scalar fills leaf gradients") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor y = sum(x * x * 3.0f);  // dy/dx = 6x
  y.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{6, 12, 18});
  CHECK(x.is_leaf());
  CHECK_FALSE(y.is_leaf());
  CHECK(y.grad_fn()->op == "sum");
}

TEST_CASE("gradients accumulate across backward calls until zero_grad") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  sum(x * 2.0f).backward();
  sum(x * 2.0f).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{4, 4});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(x.grad().to_vector() == std::vector<float>{1, 1});
}

TEST_CASE("a tensor used twice gets the sum of both paths (diamond)") {
  Tensor x = Tensor::from_vector({2.0f}, {1}).set_requires_grad();
  Tensor a = x * 3.0f, b = exp(x);
  sum(a * b).backward();  // d/dx (3x·eˣ) = 3eˣ + 3x·eˣ
  CHECK(x.grad().item() == doctest::Approx(3 * std::exp(2.0) + 6 * std::exp(2.0)).epsilon(1e-5));
}

TEST_CASE("gradients meeting at a tensor are summed in place only where nothing else holds them") {
  SUBCASE("add hands one gradient to both inputs: summing into one leaves the other's alone") {
    Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
    Tensor y = Tensor::from_vector({3, 4}, {2}).set_requires_grad();
    for (bool a_first : {true, false}) {  // either order of the uses
      x.zero_grad();
      y.zero_grad();
      const Tensor a = x * 1.0f, b = y * 1.0f;
      const Tensor loss = a_first ? sum(a * 5.0f) + sum((a + b) * 2.0f) : sum((a + b) * 2.0f) + sum(a * 5.0f);
      loss.backward();
      CHECK(x.grad().to_vector() == std::vector<float>{7, 7});
      CHECK(y.grad().to_vector() == std::vector<float>{2, 2});
    }
  }
  SUBCASE("a slice of concat's gradient plus a gradient add also hands to another input") {
    Tensor x = Tensor::from_vector({1, 2, 3, 4}, {2, 2}).set_requires_grad();
    Tensor y = Tensor::from_vector({5, 6, 7, 8}, {2, 2}).set_requires_grad();
    const Tensor weights = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8}, {2, 4});  // two rows: the slices are views
    for (bool concat_first : {true, false}) {
      x.zero_grad();
      y.zero_grad();
      const Tensor a = x * 1.0f, b = y * 1.0f;
      const Tensor from_concat = sum(concat({a, b * 3.0f}, 1) * weights), from_add = sum((a + b) * 2.0f);
      (concat_first ? from_concat + from_add : from_add + from_concat).backward();
      CHECK(x.grad().to_vector() == std::vector<float>{1 + 2, 2 + 2, 5 + 2, 6 + 2});
      CHECK(y.grad().to_vector() == std::vector<float>{3 * 3 + 2, 3 * 4 + 2, 3 * 7 + 2, 3 * 8 + 2});
    }
  }
  SUBCASE("a slice of concat's gradient plus a fresh one") {
    Tensor x = Tensor::from_vector({1, 2, 3, 4}, {1, 2, 2}).set_requires_grad();
    const Tensor a = x * 2.0f;
    const Tensor weights = Tensor::from_vector({1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, {1, 2, 6});
    sum(concat({a, a * 3.0f, a}, 2) * weights).backward();  // a's gradient: w₀ + 3·w₁ + w₂ along the last axis
    CHECK(x.grad().to_vector() == std::vector<float>{2 * (1 + 9 + 5), 2 * (2 + 12 + 6), 2 * (7 + 27 + 11), 2 * (8 + 30 + 12)});
  }
  SUBCASE("a gradient the caller holds does not change in a later backward") {
    Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
    sum(x * 2.0f).backward();
    const Tensor first = x.grad();
    sum(x * 3.0f).backward();
    CHECK(first.to_vector() == std::vector<float>{2, 2});
    CHECK(x.grad().to_vector() == std::vector<float>{5, 5});
  }
}

TEST_CASE("backward with a seed gradient; non-scalars need one") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  Tensor y = x * x;
  CHECK(test::error_of([&] { y.backward(); }).find("not a scalar") != std::string::npos);
  CHECK(test::error_of([&] { y.backward(Tensor::ones({2})); }).find("seed gradient shape [2]") != std::string::npos);
  y.backward(Tensor::from_vector({1, 0, 2}, {3}));
  CHECK(x.grad().to_vector() == std::vector<float>{2, 0, 12});
}

TEST_CASE("no_grad records nothing; detach cuts the graph") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  {
    NoGradGuard guard;
    Tensor y = x * 2.0f;
    CHECK_FALSE(y.requires_grad());
    CHECK(y.grad_fn() == nullptr);
  }
  CHECK(autograd::is_grad_enabled());
  Tensor d = (x * 2.0f).detach();
  CHECK_FALSE(d.requires_grad());
  Tensor z = sum(d * x);  // only the x factor is differentiated
  z.backward();
  CHECK(x.grad().to_vector() == std::vector<float>{2, 4});
  CHECK(test::error_of([] { sum(Tensor::ones({2})).backward(); }).find("does not require grad") != std::string::npos);
}

TEST_CASE("the graph is freed after backward unless retained") {
  Tensor x = Tensor::from_vector({1, 2}, {2}).set_requires_grad();
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  CHECK(x.grad().to_vector()[0] == doctest::Approx(2 * std::exp(1.0)));
  const std::string err = test::error_of([&] { y.backward(); });
  CHECK(err.find("already freed") != std::string::npos);
  // Freeing releases saved activations: the intermediate's storage is no longer referenced by the tape.
  Tensor big = Tensor::normal({1000}).set_requires_grad();
  Tensor hidden = exp(big);
  std::weak_ptr<Storage> saved = hidden.impl()->storage;
  Tensor loss = sum(hidden * 2.0f);
  hidden = Tensor();
  CHECK_FALSE(saved.expired());  // the tape still holds it
  loss.backward();
  CHECK(saved.expired());        // freed with the graph
}

TEST_CASE("deep chains do not overflow the stack") {
  Tensor x = Tensor::from_vector({1.0f}, {1}).set_requires_grad();
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = y * 1.0f;
  sum(y).backward();
  CHECK(x.grad().item() == 1.0f);
}

TEST_CASE("only f32 leaves may require grad") {
  Tensor i = Tensor::zeros({2}, DType::i32);
  CHECK(test::error_of([&] { i.set_requires_grad(); }).find("only f32") != std::string::npos);
  Tensor x = Tensor::ones({2}).set_requires_grad();
  Tensor y = x * 2.0f;
  CHECK(test::error_of([&] { y.set_requires_grad(false); }).find("leaf") != std::string::npos);
}

TEST_CASE("grad_check catches a wrong gradient") {
  // A deliberately wrong backward (claims d/dx x² = x) must fail the check.
  auto wrong_square = [](const std::vector<Tensor>& in) {
    Tensor y = ops::detail::binary_map(in[0], in[0], "wrong", kernels::BinaryMap::mul);  // x², without autograd
    return autograd::record(y, "wrong", {in[0]}, [xs = in[0].detach()](const Tensor& g) {
      return std::vector<Tensor>{g * xs};
    });
  };
  Generator gen(3);
  Tensor x = Tensor::uniform({5}, 0.5f, 2.0f, gen).set_requires_grad();
  CHECK_FALSE(autograd::grad_check(wrong_square, {x}).ok);
  CHECK(autograd::grad_check([](const std::vector<Tensor>& in) { return in[0] * in[0]; }, {x}).ok);
}

TEST_CASE("an active OpProfile times each backward op by name; none is timed without one") {
  Tensor x = Tensor::from_vector({1, 2, 3}, {3}).set_requires_grad();
  CHECK(OpProfile::active() == nullptr);
  {
    OpProfile profile;
    CHECK(OpProfile::active() == &profile);
    sum(x * x).backward();
    { const OpTimer timer("forward", "custom"); }
    const auto& entries = profile.entries();
    REQUIRE(entries.count("backward mul") == 1);
    CHECK(entries.at("backward mul").calls == 1);
    CHECK(entries.at("backward sum").calls == 1);
    CHECK(entries.at("forward custom").calls == 1);
    CHECK(entries.at("backward mul").seconds >= 0.0);
    CHECK(entries.count("backward (summing gradients)") == 1);
  }
  CHECK(OpProfile::active() == nullptr);
}
