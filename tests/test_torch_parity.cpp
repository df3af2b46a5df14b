// Parity with PyTorch: forward values and gradients of single ops against golden files that
// tests/data/make_torch_fixtures.py produced with Debian's python3-torch (1.13). Each file holds the
// inputs (in.*), the output, a random seed gradient, and PyTorch's gradients (grad.*) of
// sum(output · seed). Checked on both CPU backends.
#include "test_main.hpp"

#include "test_util.hpp"
#include "torch_golden.hpp"

using namespace pdyolo;
using test::Golden;

namespace {


template <class Fn>
void on_both_backends(Fn fn) {
  for (Backend b : test::compute_backends()) {
    CAPTURE(backend_name(b));
    BackendScope scope(b);
    fn();
  }
}

}  // namespace

TEST_CASE("conv2d matches PyTorch (groups + stride, dilation, 1x1)") {
  for (const char* name : {"conv2d_groups_stride", "conv2d_dilated", "conv2d_1x1"}) {
    CAPTURE(name);
    const Golden g(name);
    const Conv2dParams p = Conv2dParams()
                               .stride(static_cast<int64_t>(g.param("stride")))
                               .padding(static_cast<int64_t>(g.param("padding")))
                               .dilation(static_cast<int64_t>(g.param("dilation")))
                               .with_groups(static_cast<int64_t>(g.param("groups")));
    on_both_backends([&] { g.check(conv2d(g.in("x"), g.in("w"), g.in("b"), p)); });
  }
}

TEST_CASE("batch_norm2d matches PyTorch, including the running-statistics update") {
  for (const char* name : {"batch_norm_train", "batch_norm_eval"}) {
    CAPTURE(name);
    const Golden g(name);
    const bool training = g.file.metadata.at("training") == "true";
    on_both_backends([&] {
      Tensor rm = g.tensor("running_mean_before").clone(), rv = g.tensor("running_var_before").clone();
      const BatchNormParams p{training, static_cast<float>(g.param("momentum")), static_cast<float>(g.param("eps"))};
      g.check(batch_norm2d(g.in("x"), g.in("w"), g.in("b"), rm, rv, p));
      CHECK(test::max_rel_diff(rm, g.tensor("running_mean_after")) < 1e-6);
      CHECK(test::max_rel_diff(rv, g.tensor("running_var_after")) < 1e-6);
    });
  }
}

TEST_CASE("pooling and upsampling match PyTorch") {
  const Golden a("max_pool2d_k3_s2_p1"), b("max_pool2d_k5_s1_p2"), u("upsample_nearest_x2");
  on_both_backends([&] {
    a.check(max_pool2d(a.in("x"), {3, 2, 1}));
    b.check(max_pool2d(b.in("x"), {5, 1, 2}));
    u.check(upsample_nearest(u.in("x"), 2));
  });
}

TEST_CASE("reorg matches the reference's ReOrg (a concat of the four strided slices)") {
  const Golden g("reorg");
  on_both_backends([&] { g.check(reorg(g.in("x"))); });
}

TEST_CASE("activations, softmax and matmul match PyTorch") {
  const Golden silu_g("silu"), leaky("leaky_relu_0.1"), sig("sigmoid"), at("atan"), sm("softmax_axis1"),
      lsm("log_softmax_axis_last"), mm("matmul");
  on_both_backends([&] {
    silu_g.check(silu(silu_g.in("x")));
    leaky.check(leaky_relu(leaky.in("x"), 0.1f));
    sig.check(sigmoid(sig.in("x")));
    at.check(atan(at.in("x")));
    sm.check(softmax(sm.in("x"), 1));
    lsm.check(log_softmax(lsm.in("x"), -1));
    mm.check(matmul(mm.in("input"), mm.in("other")));
  });
}

TEST_CASE("losses match PyTorch: BCE with pos_weight, distillation KL at T=3, MSE") {
  const Golden bce("bce_with_logits_pos_weight"), kl("kl_div_distill_T3"), mse("mse");
  on_both_backends([&] {
    bce.check(bce_with_logits(bce.in("x"), bce.in("t"), {static_cast<float>(bce.param("pos_weight")), Reduction::mean}));
    const float T = static_cast<float>(kl.param("temperature"));
    kl.check(kl_div(log_softmax(kl.in("s") / T, 1), softmax(kl.in("t") / T, 1), Reduction::batchmean) * (T * T));
    mse.check(mse_loss(mse.in("a"), mse.in("b")));
  });
}

TEST_CASE("Adam and AdamW match torch.optim step by step, with the learning rate changing between steps") {
  for (train::OptimizerKind kind : {train::OptimizerKind::adam, train::OptimizerKind::adamw}) {
    const std::string name = train::optimizer_name(kind);
    CAPTURE(name);
    const Golden g(name);
    const io::Value lrs = io::parse_json(g.file.metadata.at("lrs"), name + ".safetensors (lrs)");
    Tensor p = g.tensor("p0").clone().detach().set_requires_grad();
    train::Optimizer optimizer({p}, {lrs.items.at(0).as_double(), g.param("beta1"), g.param("weight_decay"), false, g.param("beta2"), g.param("eps")},
                               kind);
    for (size_t step = 1; step <= lrs.items.size(); ++step) {
      CAPTURE(step);
      optimizer.groups[0].options.lr = lrs.items[step - 1].as_double();
      optimizer.zero_grad();
      sum(p * g.tensor("g" + std::to_string(step))).backward();  // the gradient of p is g_step
      optimizer.step();
      CHECK(test::max_rel_diff(p.detach(), g.tensor("p" + std::to_string(step))) < 1e-6);
    }
    CHECK(optimizer.groups[0].steps[0] == 5);
  }
  // The two differ (coupled L2 vs decoupled decay), so each fixture tells them apart.
  CHECK(test::max_rel_diff(Golden("adam").tensor("p5"), Golden("adamw").tensor("p5")) > 1e-4);
}
