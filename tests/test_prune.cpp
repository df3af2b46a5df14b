// Structured pruning (prune/prune.hpp): importance, the plan, and the equivalence every pruning
// must keep — the pruned graph's outputs equal those of the unpruned-shape graph whose chosen
// channels are silenced (mask) — on yolov7-tiny, yolov7 (RepConv, IDetect's implicit layers) and
// yolov3 (residual adds), with random weights and random batch-norm statistics.
#include "test_main.hpp"

#include <filesystem>
#include <sstream>

#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "pdyolo/prune/gradients.hpp"
#include "pdyolo/prune/iterative.hpp"
#include "pdyolo/prune/prune.hpp"
#include "model_util.hpp"
#include "test_util.hpp"
#include "train_util.hpp"

using namespace pdyolo;

namespace {

const std::string kSource = PDYOLO_SOURCE_DIR;

Tensor outputs(graph::Graph& g, const Tensor& x) {
  NoGradGuard no_grad;
  g.eval();
  return graph::forward(g, x).decoded;
}

// Prunes a copy and masks a copy with the same plan; their outputs must agree.
void check_equivalence(const std::string& cfg, const prune::PruneOptions& o) {
  models::YoloModel m = test::randomised_model(cfg, 11);
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
  models::YoloModel m = test::randomised_model(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
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
  o.importance = prune::Importance::taylor;  // no gradients in the model
  CHECK(test::error_of([&] { prune::plan_pruning(m.graph, o); }).find("Taylor importance needs the loss's gradients") != std::string::npos);
  o.ratio = 1.0;
  CHECK(test::error_of([&] { prune::plan_pruning(m.graph, o); }).find("the ratio must lie in [0, 1)") != std::string::npos);
}

TEST_CASE("a pruned model saves, reloads without a config and gives the same outputs") {
  models::YoloModel m = test::randomised_model(kSource + "/cfg/training/yolov7-tiny.yaml", 4);
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

TEST_CASE("taylor is Σ|w·∂L/∂w| over the group's tensors: with unit gradients it equals l1") {
  models::YoloModel m = test::randomised_model(kSource + "/cfg/training/yolov7-tiny.yaml", 6);
  // L = Σ of every trainable tensor's elements: ∂L/∂w = 1 everywhere, so |w·g| = |w|.
  Tensor total;
  for (graph::Node& n : m.graph.nodes)
    for (auto& [name, t] : n.tensors) {
      if (name == "running_mean" || name == "running_var" || name == "anchor_grid" || t.dtype() != DType::f32) continue;
      t.set_requires_grad();
      total = total.defined() ? total + sum(t) : sum(t);
    }
  total.backward();
  const graph::ChannelGroups groups = graph::channel_groups(m.graph);
  Generator gen(0);
  size_t compared = 0;
  for (const graph::ChannelGroup& group : groups.groups) {
    if (!group.prunable) continue;
    const std::vector<double> taylor = prune::channel_importance(m.graph, group, prune::Importance::taylor, gen);
    const std::vector<double> l1 = prune::channel_importance(m.graph, group, prune::Importance::l1, gen);
    for (size_t k = 0; k < l1.size(); ++k) CHECK(taylor[k] == doctest::Approx(l1[k]).epsilon(1e-9));
    ++compared;
  }
  CHECK(compared > 50);
}

TEST_CASE("accumulate_gradients: the loss's gradients over N batches, weights and batch-norm statistics untouched") {
  const data::Dataset set = test::synthetic_dataset(test::temp_path("prune_grad_voc"));
  const models::YoloModel original = test::tiny_model();
  auto gradients_of = [&](int64_t batches) {
    train::TrainOptions o = test::small_run(test::temp_path("prune_grad_run"), 1);
    o.batch_size = 1;  // six batches to draw from
    train::Trainer trainer(models::YoloModel{original.graph.clone(), original.names, original.config}, set, nullptr, test::tiny_hyp(), o);
    trainer.accumulate_gradients(batches);
    return std::move(trainer).release_model();
  };
  const models::YoloModel once = gradients_of(2), again = gradients_of(2), longer = gradients_of(4);
  const std::map<std::string, Tensor> before = original.graph.state_dict(), a = once.graph.state_dict(), b = again.graph.state_dict(),
                                      c = longer.graph.state_dict();
  size_t with_gradient = 0, grew = 0;
  for (const auto& entry : before) {  // (not a structured binding: CAPTURE is a lambda, and clang refuses)
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    CAPTURE(name);
    CHECK(test::max_rel_diff(t, a.at(name)) == 0);  // eval mode: no running-statistics update, no step
    const Tensor g = a.at(name).grad();
    if (!g.defined()) continue;
    ++with_gradient;
    CHECK(test::max_rel_diff(g, b.at(name).grad()) == 0);  // the same seeded batches
    grew += test::max_rel_diff(g, c.at(name).grad()) > 0;  // two more batches add to the sum
  }
  CHECK(with_gradient > 100);
  CHECK(grew > with_gradient / 2);
}

TEST_CASE("with_importance_gradients: the task loss's gradients (taylor), the distillation loss's (kd-taylor), a self-teacher refused") {
  const data::Dataset set = test::synthetic_dataset(test::temp_path("prune_importance_voc"));
  const models::YoloModel original = test::tiny_model();
  prune::GradientOptions o;
  o.train = test::small_run(test::temp_path("prune_importance_run"), 1);
  o.train.batch_size = 2;
  o.hyp = test::tiny_hyp();
  o.batches = 2;
  auto copy = [](const models::YoloModel& m) { return models::YoloModel{m.graph.clone(), m.names, m.config}; };
  // taylor: the same gradients as the trainer's accumulate_gradients over the same seeded batches.
  const models::YoloModel taylor = prune::with_importance_gradients(copy(original), prune::Importance::taylor, set, o);
  train::Trainer trainer(copy(original), set, nullptr, o.hyp, o.train);
  trainer.accumulate_gradients(o.batches);
  const models::YoloModel direct = std::move(trainer).release_model();
  const std::map<std::string, Tensor> a = taylor.graph.state_dict(), b = direct.graph.state_dict();
  size_t compared = 0;
  for (const auto& entry : a)
    if (entry.second.grad().defined()) {
      CAPTURE(entry.first);
      CHECK(test::max_rel_diff(entry.second.grad(), b.at(entry.first).grad()) == 0);
      ++compared;
    }
  CHECK(compared > 100);
  // kd-taylor: the distillation loss alone, against a teacher with other weights, gives other gradients.
  const models::YoloModel teacher = test::tiny_model(7);
  o.teacher = &teacher, o.teacher_name = "teacher.safetensors";
  const models::YoloModel kd = prune::with_importance_gradients(copy(original), prune::Importance::kd_taylor, set, o);
  double differ = 0;
  for (const auto& entry : kd.graph.state_dict())
    if (entry.second.grad().defined()) differ += test::max_rel_diff(entry.second.grad(), a.at(entry.first).grad());
  CHECK(differ > 0);
  // A teacher that is the model itself has no gradient to give: refused, naming it.
  o.teacher = &original, o.teacher_name = "self.safetensors";
  CHECK(test::error_of([&] { prune::with_importance_gradients(copy(original), prune::Importance::kd_taylor, set, o); })
            .find("self.safetensors: the teacher is the model being pruned") != std::string::npos);
  CHECK(test::error_of([&] { prune::with_importance_gradients(copy(original), prune::Importance::l1, set, o); })
            .find("importance l1 needs no gradients") != std::string::npos);
}

TEST_CASE("--sparsity adds S·sign(γ) to every batch-norm weight's gradient, and only there") {
  const data::Dataset set = test::synthetic_dataset(test::temp_path("prune_sparsity_voc"));
  const models::YoloModel original = test::tiny_model();
  data::LoaderOptions lo;
  lo.img_size = 64, lo.batch_size = 3, lo.workers = 0;
  data::DataLoader loader(set, lo);
  loader.start_epoch(0);
  data::Batch batch;
  REQUIRE(loader.next(batch));
  auto gradients_with = [&](double sparsity) {
    train::TrainOptions o = test::small_run(test::temp_path("prune_sparsity_run"), 1);
    o.sparsity = sparsity;
    models::YoloModel m{original.graph.clone(), original.names, original.config};
    Generator gen(9);  // signs of both kinds
    for (graph::Node& n : m.graph.nodes)
      if (n.op == graph::Op::batch_norm) n.tensor("weight") = Tensor::uniform(n.tensor("weight").shape(), -1.0f, 1.0f, gen).set_requires_grad();
    train::Trainer trainer(std::move(m), set, nullptr, test::tiny_hyp(), o);
    trainer.step(batch, /*accumulate=*/1000);  // backward only: the optimizer steps every 1000 batches
    return std::move(trainer).release_model();
  };
  const float s = 0.05f;
  const models::YoloModel plain = gradients_with(0), slim = gradients_with(s);
  size_t batch_norms = 0, expected_batch_norms = 0;
  for (size_t i = 0; i < plain.graph.nodes.size(); ++i) {
    expected_batch_norms += plain.graph.nodes[i].op == graph::Op::batch_norm;
    const graph::Node &p = plain.graph.nodes[i], &q = slim.graph.nodes[i];
    for (size_t k = 0; k < p.tensors.size(); ++k) {
      const Tensor gp = p.tensors[k].second.grad(), gq = q.tensors[k].second.grad();
      if (!gp.defined()) continue;
      const std::vector<float> a = gp.to_vector(), b = gq.to_vector(), w = p.tensors[k].second.to_vector();
      const bool gamma = p.op == graph::Op::batch_norm && p.tensors[k].first == "weight";
      batch_norms += gamma;
      for (size_t e = 0; e < a.size(); ++e) {
        const float expected = gamma ? s * static_cast<float>((w[e] > 0) - (w[e] < 0)) : 0.0f;
        CHECK(b[e] - a[e] == doctest::Approx(expected).epsilon(1e-4));
      }
    }
  }
  CHECK(batch_norms == expected_batch_norms);  // every one of them was checked
}

TEST_CASE("plan_for_target: the smallest ratio meeting a FLOPs or parameter target; an unreachable one is refused") {
  const models::YoloModel m = test::randomised_model(kSource + "/cfg/training/yolov7-tiny.yaml", 7);
  const double flops = m.graph.conv_flops(640);
  auto measure_flops = [](const graph::Graph& g) { return g.conv_flops(640); };
  const prune::TargetPlan plan = prune::plan_for_target(m.graph, {}, measure_flops, 0.6 * flops);
  graph::Graph pruned = m.graph.clone();
  prune::apply_pruning(pruned, plan.cuts);
  CHECK(pruned.conv_flops(640) == doctest::Approx(plan.measured));
  CHECK(plan.measured <= 0.6 * flops);
  CHECK(plan.measured > 0.5 * flops);  // not pruned far past the target
  prune::PruneOptions lower;
  lower.ratio = plan.ratio - 0.99 / 1024;  // the bisection's resolution below it misses the target
  graph::Graph less = m.graph.clone();
  prune::apply_pruning(less, prune::plan_pruning(m.graph, lower));
  CHECK(less.conv_flops(640) > 0.6 * flops);
  CHECK(prune::plan_for_target(m.graph, {}, measure_flops, 2 * flops).cuts.empty());  // already met: nothing cut
  CHECK(test::error_of([&] { prune::plan_for_target(m.graph, {}, measure_flops, 0.01 * flops); }).find("out of reach") != std::string::npos);
}

TEST_CASE("prune_iteratively: K prune → fine-tune steps towards a FLOPs goal, their table and models, and a resume that redoes nothing") {
  const data::Dataset set = test::synthetic_dataset(test::temp_path("prune_iterative_voc"));
  const models::YoloModel unpruned = test::tiny_model();
  const std::string work = test::temp_path("prune_iterative_steps");
  std::filesystem::remove_all(work);
  prune::IterativeOptions o;
  o.steps = 2;
  o.finetune_epochs = 1;
  o.max_map_drop = 1.0;  // any mAP: both steps run
  o.work_dir = work;
  o.img_size = 64;
  o.batch_size = 3;
  o.workers = 0;
  o.progress = false;
  o.hyp = test::tiny_hyp();
  prune::PruneOptions po;
  po.round_to = 1;
  const prune::PruneGoal goal{prune::PruneGoal::flops, 0.6};
  std::ostringstream log;
  const prune::IterativeRun run = prune::prune_iteratively(unpruned, po, goal, set, set, o, log);
  REQUIRE(run.rows.size() == 3);
  CHECK(run.kept == 2);
  const double gflops = unpruned.graph.conv_flops(64) / 1e9;
  CHECK(run.rows[0].gflops == doctest::Approx(gflops));
  CHECK(run.rows[1].gflops <= 0.8 * gflops + 1e-9);  // step 1 aims at half the way to 60 %
  CHECK(run.rows[2].gflops <= 0.6 * gflops + 1e-9);
  CHECK(run.rows[2].params < run.rows[1].params);
  CHECK(run.rows[1].params < run.rows[0].params);
  CHECK(run.model.graph.parameter_count() == run.rows[2].params);
  CHECK(std::filesystem::exists(work + "/steps.png"));
  CHECK(prune::read_steps(work + "/steps.csv").size() == 3);
  CHECK(log.str().find("step 2: ") != std::string::npos);
  // A second call finds every step done: the same rows, nothing fine-tuned again.
  std::ostringstream again_log;
  const prune::IterativeRun again = prune::prune_iteratively(unpruned, po, goal, set, set, o, again_log);
  REQUIRE(again.rows.size() == 3);
  for (size_t k = 0; k < 3; ++k) CHECK(again.rows[k].params == run.rows[k].params);
  CHECK(again_log.str().find("fine-tuning") == std::string::npos);
  CHECK(again_log.str().find("(resuming)") != std::string::npos);
  std::filesystem::remove_all(work);
}
