// Knowledge-distillation losses (distill/losses.hpp): values and gradients against PyTorch computing
// the same formulas (tests/data/make_torch_fixtures.py), finite differences, and clear errors.
#include "test_main.hpp"

#include "pdyolo/autograd/grad_check.hpp"
#include "pdyolo/distill/distiller.hpp"
#include "pdyolo/models/weights.hpp"
#include "test_util.hpp"
#include "torch_golden.hpp"
#include "train_util.hpp"

using namespace pdyolo;
using test::Golden;

namespace {

std::vector<Tensor> levels(const std::map<std::string, Tensor>& m, const std::string& prefix) {
  std::vector<Tensor> out;
  for (int i = 0; m.count(prefix + std::to_string(i)); ++i) out.push_back(m.at(prefix + std::to_string(i)));
  return out;
}

models::YoloModel half_student() {
  return models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny-half.yaml", 2), {false, 9});
}

std::vector<float> flat_state(const std::map<std::string, Tensor>& state) {
  std::vector<float> all;
  for (const auto& [name, t] : state) {
    const std::vector<float> v = t.to_vector();
    all.insert(all.end(), v.begin(), v.end());
  }
  return all;
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

TEST_CASE("ground-truth cells: those whose centre lies in a box, and the cell of each box's centre") {
  // Image 0: a box over the middle half of a 4x4 grid; image 1: a box smaller than a cell.
  const Tensor targets = Tensor::from_vector({0, 1, 0.5f, 0.5f, 0.5f, 0.5f, 1, 0, 0.9f, 0.1f, 0.01f, 0.01f}, {2, 6});
  const std::vector<float> m = distill::ground_truth_mask(targets, 2, 4, 4).to_vector();
  std::vector<float> expected(32, 0.0f);
  for (int y : {1, 2})
    for (int x : {1, 2}) expected[y * 4 + x] = 1;
  expected[16 + 0 * 4 + 3] = 1;
  CHECK(m == expected);
  // A level with no labelled cell adds nothing (rather than dividing by zero).
  const Tensor f = Tensor::ones({1, 2, 2, 2}).set_requires_grad();
  CHECK(distill::feature_loss({f}, {Tensor::zeros({1, 2, 2, 2})}, {Tensor::zeros({1, 1, 2, 2})}).item() == 0.0f);
}

TEST_CASE("teacher-student training: every mode trains a narrower student; the KD term is logged; adapters stay out of the model") {
  namespace fs = std::filesystem;
  const std::string root = test::temp_path("kd_data"), out = test::temp_path("kd_out");
  const data::Dataset ds = test::synthetic_dataset(root);
  for (const std::string mode : {"kl", "bce", "mse", "feature", "feature gt", "cwd"}) {
    CAPTURE(mode);
    distill::KdOptions o;
    o.mode = distill::parse_kd_mode(mode.substr(0, mode.find(' ')));
    if (mode == "feature gt") o.mask = distill::KdMask::ground_truth;
    models::YoloModel student = half_student();
    distill::Distiller distiller(test::tiny_model(), student, o, 0, "teacher");
    train::Trainer trainer(std::move(student), ds, nullptr, test::tiny_hyp(), test::small_run(out, 1));
    distiller.attach(trainer);
    std::ostringstream log;
    const auto records = trainer.run(log);
    REQUIRE(records.size() == 1);
    CHECK(records[0].kd > 0);
    CHECK(std::isfinite(records[0].loss.total));
    std::ifstream csv(out + "/results.csv");
    std::string header;
    std::getline(csv, header);
    CHECK(header.substr(header.size() - 3) == ",kd");
    const io::SafetensorsContent ck = io::load_safetensors(out + "/last.safetensors");
    const bool adapters = ck.tensors.count("train.aux.distill.adapter.0") > 0;
    CHECK(adapters == (o.mode == distill::KdMode::feature || o.mode == distill::KdMode::cwd));
    if (adapters) CHECK(ck.tensors.at("train.aux.distill.adapter.0").shape() == Shape{128, 64, 1, 1});  // P3 neck: student 64 → teacher 128
    const models::YoloModel deployed = models::load_model(out + "/last.safetensors");
    for (const auto& [name, t] : deployed.graph.state_dict()) CHECK(name.find("distill") == std::string::npos);
    fs::remove_all(out);
  }
  fs::remove_all(root);
}

TEST_CASE("distillation resumes exactly, adapters and their optimizer state included") {
  namespace fs = std::filesystem;
  const std::string root = test::temp_path("kd_resume_data"), straight = test::temp_path("kd_straight"), split = test::temp_path("kd_split");
  const data::Dataset ds = test::synthetic_dataset(root);
  distill::KdOptions o;
  o.mode = distill::KdMode::feature;
  o.stop_epoch = 2;  // the third epoch trains on the task loss alone
  std::vector<train::EpochRecord> records;
  auto run = [&](const std::string& dir, int64_t max_steps, bool resume) {
    models::YoloModel student = half_student();
    distill::Distiller distiller(test::tiny_model(), student, o, 0, "teacher");
    train::TrainOptions options = test::small_run(dir, 3);
    options.max_steps = max_steps;
    train::Trainer trainer(std::move(student), ds, nullptr, test::tiny_hyp(), options);
    distiller.attach(trainer);
    if (resume) trainer.resume(dir + "/last.safetensors");
    std::ostringstream log;
    records = trainer.run(log);
    return io::load_safetensors(dir + "/last.safetensors").tensors;
  };
  const auto a = run(straight, 0, false);
  REQUIRE(records.size() == 3);
  CHECK(records[1].kd > 0);
  CHECK(records[2].kd == 0);  // past --kd-stop-epoch
  run(split, 4, false);  // stopped after 2 of 3 epochs
  const auto b = run(split, 0, true);
  CHECK(a.count("train.aux.distill.adapter.2"));
  std::map<std::string, Tensor> weights_a, weights_b;
  for (const auto& [name, t] : a) weights_a[name] = t;
  for (const auto& [name, t] : b) weights_b[name] = t;
  REQUIRE(weights_a.size() == weights_b.size());
  CHECK(flat_state(weights_a) == flat_state(weights_b));
  // Resuming without the adapters (another --kd) is refused, naming the cause.
  models::YoloModel student = half_student();
  train::Trainer plain(std::move(student), ds, nullptr, test::tiny_hyp(), test::small_run(split, 3));
  CHECK(test::error_of([&] { plain.resume(split + "/last.safetensors"); }).find("resume with the same --kd") != std::string::npos);
  for (const std::string& d : {root, straight, split}) fs::remove_all(d);
}

TEST_CASE("a teacher that does not fit the student is refused with both values named") {
  const models::YoloModel student = half_student();
  const models::YoloModel other_classes =
      models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3));
  CHECK(test::error_of([&] { distill::Distiller(other_classes, student, {}, 0, "t.safetensors"); })
            .find("t.safetensors: the teacher detects 3 classes, the student 2") != std::string::npos);
  models::YoloModel trained_anchors = test::tiny_model();  // EMA rounding in the anchors is no mismatch
  trained_anchors.graph.nodes[static_cast<size_t>(trained_anchors.graph.detect_node())].tensor("anchor_grid").data<float>()[17] += 3e-5f;
  CHECK_NOTHROW(distill::Distiller(trained_anchors, student, {}, 0, "t.pt"));
  models::YoloModel other_anchors = test::tiny_model();
  other_anchors.graph.nodes[static_cast<size_t>(other_anchors.graph.detect_node())].tensor("anchor_grid").data<float>()[0] += 1;
  CHECK(test::error_of([&] { distill::Distiller(other_anchors, student, {}, 0, "t.pt"); }).find("t.pt: the teacher's anchors differ") !=
        std::string::npos);
  CHECK(test::error_of([] { distill::parse_kd_mode("soft"); }).find("--kd: unknown mode 'soft' (kl, bce, mse, feature or cwd)") !=
        std::string::npos);
  distill::KdOptions gt_on_kl;
  gt_on_kl.mask = distill::KdMask::ground_truth;
  CHECK(test::error_of([&] { distill::Distiller(test::tiny_model(), student, gt_on_kl, 0, "t"); }).find("--kd-mask gt applies to --kd feature only") !=
        std::string::npos);
}
