// Structured pruning (prune/prune.hpp): importance, the plan, and the equivalence every pruning
// must keep — the pruned graph's outputs equal those of the unpruned-shape graph whose chosen
// channels are silenced (mask) — on yolov7-tiny, yolov7 (RepConv, IDetect's implicit layers) and
// yolov3 (residual adds), with random weights and random batch-norm statistics.
#include "test_main.hpp"

#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/prune/prune.hpp"
#include "test_util.hpp"

using namespace pdyolo;

namespace {

const std::string kSource = PDYOLO_SOURCE_DIR;

// Every batch norm's statistics and affine parameters, and every implicit, drawn at random, so that
// no channel is silent by accident and the implicit folding is exercised.
models::YoloModel randomised(const std::string& cfg, uint64_t seed) {
  models::YoloModel m = models::build_yolo(models::load_model_config(cfg, 3), {false, seed});
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

Tensor outputs(graph::Graph& g, const Tensor& x) {
  NoGradGuard no_grad;
  g.eval();
  return graph::forward(g, x).decoded;
}

// Prunes a copy and masks a copy with the same plan; their outputs must agree.
void check_equivalence(const std::string& cfg, const prune::PruneOptions& o) {
  models::YoloModel m = randomised(cfg, 11);
  const std::vector<prune::GroupCut> cuts = prune::plan_pruning(m.graph, o);
  REQUIRE(!cuts.empty());
  graph::Graph pruned = m.graph.clone(), masked = m.graph.clone();
  prune::apply_pruning(pruned, cuts);
  prune::apply_mask(masked, cuts);
  Generator gen(5);
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f, gen);
  const Tensor a = outputs(pruned, x), b = outputs(masked, x), original = outputs(m.graph, x);
  CHECK(pruned.parameter_count() < masked.parameter_count());
  CHECK(pruned.conv_flops(640) < masked.conv_flops(640));
  CHECK(test::max_rel_diff(a, b) < 1e-4);
  CHECK(test::max_rel_diff(original, b) > 1e-3);  // the mask did silence something
  MESSAGE(cfg.substr(cfg.rfind('/') + 1) << ": " << cuts.size() << " groups cut, parameters " << m.graph.parameter_count() << " → "
          << pruned.parameter_count() << ", GFLOPs " << m.graph.conv_flops(640) / 1e9 << " → " << pruned.conv_flops(640) / 1e9
          << ", max relative difference pruned vs masked " << test::max_rel_diff(a, b));
}

}  // namespace

TEST_CASE("pruned and masked graphs give the same outputs: yolov7-tiny, local and global, every criterion") {
  for (const std::string importance : {"l1", "l2", "bn", "random"}) {
    for (const bool global : {false, true}) {
      CAPTURE(importance);
      CAPTURE(global);
      prune::PruneOptions o;
      o.importance = prune::parse_importance(importance);
      o.global = global;
      o.ratio = 0.4;
      check_equivalence(kSource + "/cfg/training/yolov7-tiny.yaml", o);
    }
  }
}

TEST_CASE("pruned and masked graphs give the same outputs: yolov7 (RepConv, IDetect implicits folded into the head's biases)") {
  prune::PruneOptions o;
  o.ratio = 0.3;
  check_equivalence(kSource + "/cfg/training/yolov7.yaml", o);
}

TEST_CASE("pruned and masked graphs give the same outputs: yolov3 (residual adds)" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) return test::skip("../shared is absent; yolov3.yaml lives in ../shared/fixtures/cfg/baseline");
  prune::PruneOptions o;
  o.ratio = 0.3;
  o.global = true;
  check_equivalence(shared + "/fixtures/cfg/baseline/yolov3.yaml", o);
}

TEST_CASE("the plan: least important channels first, rounding, the per-group limit, ignored groups") {
  models::YoloModel m = randomised(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  // model.0's 32 output channels: make channel 5 by far the smallest.
  graph::Node& conv0 = m.graph.nodes[1];
  REQUIRE(conv0.name == "model.0.conv");
  Tensor w = contiguous_copy(conv0.tensor("weight"));
  std::fill_n(w.data<float>() + 5 * 27, 27, 1e-6f);
  conv0.tensor("weight") = w;
  prune::PruneOptions o;
  o.ratio = 0.05;  // floor(0.05 · 32) = 1 channel
  o.round_to = 1;
  const std::vector<prune::GroupCut> cuts = prune::plan_pruning(m.graph, o);
  const auto cut0 = std::find_if(cuts.begin(), cuts.end(), [](const prune::GroupCut& c) { return c.node == "model.0.conv"; });
  REQUIRE(cut0 != cuts.end());
  CHECK(cut0->removed == std::vector<int64_t>{5});
  // 30 % of 64 is 19 (keep 45), rounded up to keep 48: 16 go. max_layer_ratio caps a 90 % request at 80 %.
  o.ratio = 0.3;
  o.round_to = 8;
  for (const prune::GroupCut& c : prune::plan_pruning(m.graph, o))
    if (c.channels == 64) CHECK(c.removed.size() == 16);
  o.ratio = 0.9;
  o.round_to = 1;
  for (const prune::GroupCut& c : prune::plan_pruning(m.graph, o)) CHECK(c.channels - static_cast<int64_t>(c.removed.size()) >= (c.channels + 4) / 5);
  o.ignore = {"model.0.conv"};
  for (const prune::GroupCut& c : prune::plan_pruning(m.graph, o)) CHECK(c.node != "model.0.conv");
  CHECK(test::error_of([] { prune::parse_importance("taylor2"); }).find("unknown criterion 'taylor2'") != std::string::npos);
  o.ratio = 1.0;
  CHECK(test::error_of([&] { prune::plan_pruning(m.graph, o); }).find("the ratio must lie in [0, 1)") != std::string::npos);
}

TEST_CASE("a pruned model saves, reloads without a config and gives the same outputs") {
  models::YoloModel m = randomised(kSource + "/cfg/training/yolov7-tiny.yaml", 4);
  prune::apply_pruning(m.graph, prune::plan_pruning(m.graph, {}));
  m.config.reset();  // no config describes it any more
  const std::string path = test::temp_path("pruned.safetensors");
  models::save_model(path, m);
  models::YoloModel loaded = models::load_model(path);
  std::remove(path.c_str());
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f);
  CHECK(loaded.graph.parameter_count() == m.graph.parameter_count());
  CHECK(test::max_rel_diff(outputs(loaded.graph, x), outputs(m.graph, x)) == 0);
}
