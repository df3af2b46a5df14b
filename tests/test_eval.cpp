// NMS, matching and AP on hand-computed cases, and mAP parity with the reference implementation.
#include "test_main.hpp"

#include "pdyolo/eval/evaluate.hpp"
#include "pdyolo/eval/report.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/models/weights.hpp"
#include "test_util.hpp"

#include <filesystem>
#include <fstream>

using namespace pdyolo;
using eval::Detection;

namespace {

data::Box gt(float x1, float y1, float x2, float y2, int64_t cls = 0, bool difficult = false) {
  data::Box b;
  b.x1 = x1, b.y1 = y1, b.x2 = x2, b.y2 = y2, b.cls = cls, b.difficult = difficult;
  return b;
}

// One prediction row: cx, cy, w, h, objectness, then class scores.
std::vector<float> row(float cx, float cy, float w, float h, float obj, std::vector<float> cls) {
  std::vector<float> r{cx, cy, w, h, obj};
  r.insert(r.end(), cls.begin(), cls.end());
  return r;
}

}  // namespace

TEST_CASE("NMS: thresholds, class separation, multi-label, max detections") {
  std::vector<float> pred;
  for (const auto& r : {row(50, 50, 20, 20, 0.9f, {1.0f, 0.0f}),     // kept
                        row(51, 50, 20, 20, 0.8f, {1.0f, 0.0f}),     // IoU ≈ 0.9 with the first: suppressed
                        row(150, 50, 20, 20, 0.7f, {1.0f, 0.0f}),    // elsewhere: kept
                        row(50, 50, 20, 20, 0.6f, {0.0f, 1.0f}),     // same place, other class: kept
                        row(90, 90, 10, 10, 0.2f, {1.0f, 1.0f}),     // objectness below 0.25: dropped
                        row(200, 200, 10, 10, 0.5f, {0.6f, 0.7f})})  // two classes above threshold
    pred.insert(pred.end(), r.begin(), r.end());
  const int64_t n = 6, no = 7;
  const auto single = eval::non_max_suppression(pred.data(), n, no, {0.25f, 0.45f, false, false, 300, 30000});
  REQUIRE(single.size() == 4);
  CHECK(single[0].score == doctest::Approx(0.9f));
  CHECK(single[0].x1 == doctest::Approx(40.0f));
  CHECK(single[1].score == doctest::Approx(0.7f));
  CHECK(single[2].cls == 1);
  CHECK(single[3].cls == 1);  // best class of the last row: 0.5 × 0.7
  CHECK(single[3].score == doctest::Approx(0.35f));
  const auto multi = eval::non_max_suppression(pred.data(), n, no, {0.25f, 0.45f, true, false, 300, 30000});
  CHECK(multi.size() == 5);  // the last row yields both classes (0.3 and 0.35)
  const auto agnostic = eval::non_max_suppression(pred.data(), n, no, {0.25f, 0.45f, false, true, 300, 30000});
  CHECK(agnostic.size() == 3);  // the other-class box at the same place is suppressed too
  CHECK(eval::non_max_suppression(pred.data(), n, no, {0.25f, 0.45f, true, false, 2, 30000}).size() == 2);
  // Batched form over a decoded tensor.
  const Tensor batch = Tensor::from_vector(pred, {1, n, no});
  CHECK(eval::non_max_suppression(batch, {0.25f, 0.45f, false, false, 300, 30000})[0].size() == 4);
}

TEST_CASE("AP by hand: TP, FP, TP against two boxes, under each protocol") {
  // Precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1.
  const std::vector<data::Box> truth{gt(0, 0, 10, 10), gt(100, 100, 110, 110)};
  const std::vector<Detection> dets{{0, 0, 10, 10, 0.9f, 0}, {50, 50, 60, 60, 0.8f, 0}, {100, 100, 110, 110, 0.7f, 0}};
  struct Expected {
    eval::Protocol protocol;
    double ap;
  };
  for (const Expected& e : {Expected{eval::Protocol::voc12, 0.5 + 0.5 * 2.0 / 3.0},
                            Expected{eval::Protocol::voc07, (6 + 5 * 2.0 / 3.0) / 11.0},
                            Expected{eval::Protocol::coco, 0.8316666666666666}}) {  // numpy's trapz over 101 points
    eval::Evaluator ev(e.protocol);
    ev.add_image(dets, truth);
    const eval::Metrics m = ev.compute();
    REQUIRE(m.classes.size() == 1);
    CHECK(m.map50 == doctest::Approx(e.ap).epsilon(1e-9));
    CHECK(m.map50_95 == doctest::Approx(e.ap).epsilon(1e-9));  // exact boxes: every IoU threshold agrees
    CHECK(m.labels == 2);
    CHECK(m.images == 1);
  }
}

TEST_CASE("IoU thresholds, duplicates, other classes and difficult boxes") {
  // IoU 0.7 with the box: correct at 0.50, 0.55, 0.60, 0.65 only → AP@.5:.95 = 0.4.
  eval::Evaluator ev;
  ev.add_image({{0, 0, 10, 7, 0.9f, 0}}, {gt(0, 0, 10, 10)});
  eval::Metrics m = ev.compute();
  CHECK(m.map50 == doctest::Approx(1.0));
  CHECK(m.map50_95 == doctest::Approx(0.4));
  CHECK(m.precision == doctest::Approx(1.0));
  CHECK(m.recall == doctest::Approx(1.0));

  // A duplicate of a taken box is a false positive; predictions of a class without labels too.
  eval::Evaluator dup(eval::Protocol::voc12);
  dup.add_image({{0, 0, 10, 10, 0.9f, 0}, {0, 0, 10, 10, 0.8f, 0}, {0, 0, 10, 10, 0.95f, 3}}, {gt(0, 0, 10, 10)});
  m = dup.compute();
  REQUIRE(m.classes.size() == 1);  // only classes with labels are averaged
  CHECK(m.classes[0].predictions == 2);
  CHECK(m.map50 == doctest::Approx(1.0));  // the FP comes after the TP
  CHECK(m.classes[0].precision == doctest::Approx(1.0).epsilon(0.01));  // read at the best-F1 confidence, interpolated

  // Difficult: a detection of it is neither right nor wrong, and it is not a label.
  eval::Evaluator voc(eval::Protocol::voc07);
  voc.add_image({{0, 0, 10, 10, 0.9f, 0}, {20, 20, 30, 30, 0.8f, 0}}, {gt(0, 0, 10, 10, 0, true), gt(20, 20, 30, 30)});
  m = voc.compute();
  CHECK(m.labels == 1);
  CHECK(m.map50 == doctest::Approx(1.0));
  // A class whose labels were never detected counts with AP 0.
  eval::Evaluator missed;
  missed.add_image({{0, 0, 10, 10, 0.9f, 0}}, {gt(0, 0, 10, 10, 0), gt(50, 50, 60, 60, 1)});
  m = missed.compute();
  CHECK(m.classes.size() == 2);
  CHECK(m.map50 == doctest::Approx(0.5));
}

TEST_CASE("reports: metrics.json and the PR-curve plot") {
  eval::Evaluator ev;
  ev.add_image({{0, 0, 10, 10, 0.9f, 0}}, {gt(0, 0, 10, 10), gt(20, 20, 40, 40, 1)});
  const eval::Metrics m = ev.compute();
  const io::Value json = io::parse_json(eval::metrics_json(m, {"cat", "dog"}, "coco"), "metrics.json");
  CHECK(json.find("map50")->as_double() == doctest::Approx(0.5));
  CHECK(json.find("classes")->items.size() == 2);
  CHECK(json.find("classes")->items[1].find("name")->str == "dog");
  const data::Image plot = eval::plot_pr_curve(m);
  CHECK(plot.width == 900);
  int64_t blue = 0;  // the mean curve is drawn
  for (size_t i = 0; i < plot.pixels.size(); i += 3) blue += plot.pixels[i] == 30 && plot.pixels[i + 1] == 90 && plot.pixels[i + 2] == 220;
  CHECK(blue > 500);
  std::ostringstream table;
  eval::print_class_table(table, m, {"cat", "dog"});
  CHECK(table.str().find("dog") != std::string::npos);
}

TEST_CASE("evaluate() reports and skips an unreadable image") {
  namespace fs = std::filesystem;
  const std::string root = test::temp_path("eval_skip");
  fs::remove_all(root);
  fs::create_directories(root + "/JPEGImages");
  fs::create_directories(root + "/Annotations");
  fs::create_directories(root + "/ImageSets/Main");
  data::save_image(root + "/JPEGImages/good.jpg", data::Image(64, 48, 90));
  std::ofstream(root + "/JPEGImages/bad.jpg") << "not a jpeg";
  const std::string xml = "<annotation><size><width>64</width><height>48</height></size><object><name>a</name>"
                          "<bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox></object></annotation>";
  std::ofstream(root + "/Annotations/good.xml") << xml;
  std::ofstream(root + "/Annotations/bad.xml") << xml;
  std::ofstream(root + "/ImageSets/Main/val.txt") << "good\nbad\n";
  std::ofstream(root + "/classes.txt") << "a\nb\n";
  const data::Dataset ds = data::load_voc(root, {"val"});
  REQUIRE(ds.samples.size() == 2);
  models::YoloModel model = models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 2));
  eval::EvalOptions o;
  o.img_size = 64;
  o.progress = false;
  const eval::EvalRun run = eval::evaluate(model.graph, ds, o);
  CHECK(run.skipped_images == 1);
  REQUIRE(run.problems.size() == 1);
  CHECK(run.problems[0].find("bad.jpg: cannot decode image") != std::string::npos);
  CHECK(run.metrics.images == 1);
  fs::remove_all(root);
}

TEST_CASE("mAP parity with the reference implementation on coco128-voc at 320" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) {
    return test::skip("../shared is absent; no fixture checkpoint or dataset");
  }
  const io::Value ref = io::load_yaml(shared + "/fixtures/yolov7-tiny-coco128/reference.json");  // JSON is YAML
  const io::Value& expected = *ref.find("eval_train2017_320");
  models::YoloModel model = models::load_model(shared + "/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt");
  graph::fuse(model.graph);
  const data::Dataset ds = data::load_voc(shared + "/data/coco128-voc", {"train2017"});
  eval::EvalOptions o;
  o.img_size = 320;
  o.progress = false;
  const eval::EvalRun run = eval::evaluate(model.graph, ds, o);
  MESSAGE("mAP50 ", run.metrics.map50, " (reference ", expected.find("map50")->as_double(), "), mAP50-95 ", run.metrics.map50_95,
          " (reference ", expected.find("map50_95")->as_double(), ")");
  CHECK(run.metrics.images == 128);
  CHECK(std::fabs(run.metrics.map50 - expected.find("map50")->as_double()) < 0.005);
  CHECK(std::fabs(run.metrics.map50_95 - expected.find("map50_95")->as_double()) < 0.005);
  CHECK(std::fabs(run.metrics.precision - expected.find("precision")->as_double()) < 0.01);
  CHECK(std::fabs(run.metrics.recall - expected.find("recall")->as_double()) < 0.01);
}
