// The quantization scheme (quant/): parameters, rounding, fixed-point requantization and the
// activation tables at their edges; fake quantization and its straight-through gradient, and the
// min-max observers, against PyTorch (tests/data/make_torch_fixtures.py); the histogram observers
// on distributions whose best range is known.
#include "test_main.hpp"

#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <random>

#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/quant/agreement.hpp"
#include "pdyolo/quant/fake_quant.hpp"
#include "pdyolo/quant/model_file.hpp"
#include "pdyolo/quant/lut.hpp"
#include "pdyolo/quant/observer.hpp"
#include "pdyolo/ops/reduce.hpp"
#include "pdyolo/quant/qat.hpp"
#include "pdyolo/quant/sensitivity.hpp"
#include "model_util.hpp"
#include "train_util.hpp"
#include "test_util.hpp"
#include "torch_golden.hpp"

using namespace pdyolo;
using namespace pdyolo::quant;

TEST_CASE("activation parameters: 0 is a level, the range is held, degenerate ranges stay finite") {
  const QParams p = choose_activation_params(-0.3f, 2.0f);
  CHECK(p.scale == doctest::Approx(2.3 / 255));
  CHECK(dequantize_activation(p.zero_point, p) == 0.0f);
  CHECK(quantize_activation(-0.3f, p) == 0);
  CHECK(quantize_activation(2.0f, p) == 255);
  CHECK(quantize_activation(-5.0f, p) == 0);  // saturation
  CHECK(quantize_activation(50.0f, p) == 255);
  const QParams positive = choose_activation_params(0.5f, 1.0f);  // widened to [0, 1]
  CHECK(positive.zero_point == 0);
  CHECK(positive.scale == doctest::Approx(1.0 / 255));
  const QParams negative = choose_activation_params(-1.0f, -0.5f);  // widened to [−1, 0]
  CHECK(negative.zero_point == 255);
  const QParams zero = choose_activation_params(0.0f, 0.0f);
  CHECK(zero.scale > 0);
  CHECK(quantize_activation(0.0f, zero) == zero.zero_point);
  CHECK(test::error_of([] { choose_activation_params(1.0f, 0.0f); }).find("not a finite interval") != std::string::npos);
}

TEST_CASE("rounding: float to integer rounds ties to even; weights stay in [−127, 127]") {
  const QParams p{0.5f, 10};
  CHECK(quantize_activation(0.25f, p) == 10);   // 0.5 → 0
  CHECK(quantize_activation(0.75f, p) == 12);   // 1.5 → 2
  CHECK(quantize_activation(-0.25f, p) == 10);  // −0.5 → 0
  CHECK(quantize_activation(-0.75f, p) == 8);   // −1.5 → −2
  CHECK(quantize_weight(1.0f, weight_scale(1.0f)) == 127);
  CHECK(quantize_weight(-1.0f, weight_scale(1.0f)) == -127);
  CHECK(quantize_weight(-3.0f, weight_scale(1.0f)) == -127);  // never −128
  CHECK(weight_scale(0.0f) == 1.0f);
}

TEST_CASE("requantization: 31-bit multipliers, one rounding (ties toward +∞), saturation, negative zero points") {
  for (const double m : {0.5, 0.75, 1.0 / 3.0, 1e-4, 0.999999, 1.0, 3.7, 1e-9}) {
    CAPTURE(m);
    const Multiplier q = make_multiplier(m);
    CHECK(q.value >= (1 << 30));
    CHECK(std::fabs(q.real() - m) <= m * std::ldexp(1.0, -30));
    std::mt19937 gen(1);
    for (int i = 0; i < 2000; ++i) {  // against the exact value: ⌊acc · real + 1/2⌋ in long double
      const int32_t acc = static_cast<int32_t>(gen());
      const long double exact = static_cast<long double>(acc) * q.value / std::ldexp(1.0L, q.shift);
      CHECK(requantize(acc, q) == std::clamp<int64_t>(static_cast<int64_t>(std::floor(exact + 0.5L)), INT32_MIN, INT32_MAX));
    }
  }
  const Multiplier half = make_multiplier(0.5);
  CHECK(requantize(3, half) == 2);    // 1.5 → 2
  CHECK(requantize(-3, half) == -1);  // −1.5 → −1 (toward +∞)
  CHECK(requantize(5, half) == 3);    // 2.5 → 3
  CHECK(requantize(-5, half) == -2);  // −2.5 → −2
  CHECK(requantize(INT32_MIN, half) == -(1 << 30));
  CHECK(requantize(INT32_MAX, make_multiplier(0.999)) > 2000000000);
  CHECK(requantize_to_u8(1000, half, 0) == 255);   // saturates high
  CHECK(requantize_to_u8(-1000, half, 3) == 0);    // and low
  CHECK(requantize_to_u8(-20, half, 12) == 2);     // −10 + 12
  CHECK(requantize_to_u8(10, half, -3) == 2);      // a negative zero point (s8 view): 5 − 3
  const Multiplier tiny = make_multiplier(1e-12);  // every output is 0
  CHECK(requantize(INT32_MAX, tiny) == 0);
  CHECK(requantize(INT32_MIN, tiny) == 0);
  CHECK(test::error_of([] { make_multiplier(0.0); }).find("not a positive finite number") != std::string::npos);
  CHECK(test::error_of([] { make_multiplier(1e10); }).find("too large") != std::string::npos);
}

TEST_CASE("activation tables: every level is f of its dequantized value, quantized") {
  const QParams in = choose_activation_params(-6.0f, 6.0f), out = choose_activation_params(-0.3f, 6.0f);
  const std::vector<std::pair<std::string, std::function<double(double)>>> definitions{
      {"silu", [](double x) { return x / (1 + std::exp(-x)); }},
      {"leaky_relu", [](double x) { return x >= 0 ? x : 0.1 * x; }},
      {"relu", [](double x) { return std::max(x, 0.0); }},
      {"identity", [](double x) { return x; }},
      {"sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }}};
  const std::map<std::string, ActivationTable> tables{
      {"silu", activation_table({Activation::silu}, in, out)},
      {"leaky_relu", activation_table({Activation::leaky_relu, 0.1f}, in, out)},
      {"relu", activation_table({Activation::relu}, in, out)},
      {"identity", activation_table({Activation::identity}, in, out)},
      {"sigmoid", sigmoid_table(in, choose_activation_params(0.0f, 1.0f))}};
  for (const auto& definition : definitions) {  // (not a structured binding: CAPTURE is a lambda, and clang refuses)
    const std::string& name = definition.first;
    const std::function<double(double)>& f = definition.second;
    CAPTURE(name);
    const QParams o = name == "sigmoid" ? choose_activation_params(0.0f, 1.0f) : out;
    const ActivationTable& table = tables.at(name);
    for (int q = 0; q < 256; ++q) {
      const double x = (q - in.zero_point) * static_cast<double>(in.scale), y = f(x);
      const double level = std::clamp(std::nearbyint(y / o.scale) + o.zero_point, 0.0, 255.0);
      CHECK(table[static_cast<size_t>(q)] == static_cast<int>(level));
      // within half a level of the true value unless clamped
      if (level > 0 && level < 255) CHECK(std::fabs(dequantize_activation(table[static_cast<size_t>(q)], o) - y) <= 0.5001 * o.scale);
    }
  }
  // LeakyReLU into its own scale is the identity above zero: table[q] = q for q ≥ z.
  const ActivationTable leaky = activation_table({Activation::leaky_relu, 0.1f}, in, in);
  for (int q = in.zero_point; q < 256; ++q) CHECK(leaky[static_cast<size_t>(q)] == q);
}

TEST_CASE("fake quantization per tensor matches PyTorch, ties and straight-through gradient included") {
  const test::Golden g("quant_fake_per_tensor");
  const QParams p{static_cast<float>(g.param("scale")), static_cast<int32_t>(g.param("zero_point"))};
  const Tensor y = fake_quant_activation(g.in("x"), p);
  CHECK(test::max_rel_diff(y, g.tensor("out")) == 0);  // bit for bit
  g.check(y, 1e-7);
}

TEST_CASE("fake quantization of weights per output channel matches PyTorch") {
  const test::Golden g("quant_fake_per_channel");
  const std::vector<float> scales = weight_scales(g.in("w"));
  const std::vector<float> torch_scales = g.tensor("scales").to_vector();
  for (size_t c = 0; c < scales.size(); ++c) CHECK(scales[c] == doctest::Approx(torch_scales[c]).epsilon(1e-6));
  const Tensor y = fake_quant_weight(g.in("w"), torch_scales);
  CHECK(test::max_rel_diff(y, g.tensor("out")) == 0);
  g.check(y, 1e-7);
  CHECK(test::error_of([&] { fake_quant_weight(g.in("w"), {1.0f, 1.0f}); }).find("2 scales for a tensor of shape") != std::string::npos);
}

TEST_CASE("min-max and moving-average observers match PyTorch's") {
  for (const std::string name : {"minmax", "ema"}) {
    CAPTURE(name);
    const test::Golden g("quant_observer_" + name);
    Observer observer(parse_observer(name));
    for (int b = 0; b < 3; ++b) observer.observe(g.tensor("batch" + std::to_string(b)));
    CHECK(observer.min() == doctest::Approx(g.tensor("min").item()).epsilon(1e-6));
    CHECK(observer.max() == doctest::Approx(g.tensor("max").item()).epsilon(1e-6));
    const QParams p = observer.params();
    CHECK(p.scale == doctest::Approx(g.tensor("scale").item()).epsilon(1e-6));
    CHECK(p.zero_point == static_cast<int32_t>(g.tensor("zero_point").item()));
  }
  CHECK(test::error_of([] { parse_observer("entropy"); }).find("unknown observer 'entropy'") != std::string::npos);
  CHECK(test::error_of([] { Observer(ObserverKind::minmax).params(); }).find("has seen nothing") != std::string::npos);
}

TEST_CASE("histogram observers: percentile and kl clip outliers, mse errs least, widening keeps the mass") {
  // 100,000 values uniform on [0, 4] and five outliers at 100 (0.005 %).
  std::mt19937 gen(3);
  std::uniform_real_distribution<float> uniform(0.0f, 4.0f);
  std::vector<float> values(100000);
  for (float& v : values) v = uniform(gen);
  for (int i = 1; i <= 5; ++i) values[static_cast<size_t>(i * 9973)] = 100.0f;
  const Tensor batch = Tensor::from_vector(values, {static_cast<int64_t>(values.size())});
  const Tensor first = Tensor::from_vector(std::vector<float>(values.begin(), values.begin() + 9000), {9000});  // within [0, 4]
  auto squared_error = [&](QParams p) {
    double e = 0;
    for (float v : values) e += std::pow(dequantize_activation(quantize_activation(v, p), p) - v, 2.0);
    return e;
  };
  std::map<ObserverKind, std::pair<float, float>> ranges;
  for (const ObserverKind kind : {ObserverKind::minmax, ObserverKind::percentile, ObserverKind::kl, ObserverKind::mse}) {
    Observer observer(kind);
    observer.observe(first);  // the histogram starts on [0, 4] and must widen to 100
    observer.observe(batch);
    CHECK(observer.histogram().total() == (kind == ObserverKind::minmax ? 0.0 : 109000.0));
    ranges[kind] = observer.range();
  }
  CHECK(ranges[ObserverKind::minmax].second == 100.0f);
  CHECK(ranges[ObserverKind::percentile].second == doctest::Approx(4.0).epsilon(0.02));  // the bulk's top
  // kl: the first candidate of TensorRT's search is 256 of the 2048 bins (12.5); it clips there or
  // below the outliers' bin
  CHECK(ranges[ObserverKind::kl].second < 13.0f);
  CHECK(ranges[ObserverKind::kl].first < 0.1f);
  // A two-sided tensor (a conv's output before its activation): the clip stays above 0 and keeps
  // most of the positive side (before the fix, the first candidate lay at −3.75 and every positive
  // value was clamped to 0).
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> two_sided(50000);
  for (float& v : two_sided) v = normal(gen);
  two_sided[0] = -30.0f, two_sided[1] = 30.0f;
  Observer kl(ObserverKind::kl);
  kl.observe(Tensor::from_vector(two_sided, {static_cast<int64_t>(two_sided.size())}));
  CHECK(kl.range().second > 2.5f);
  const double minmax_error = squared_error(choose_activation_params(0, 100));
  const double mse_error = squared_error(choose_activation_params(ranges[ObserverKind::mse].first, ranges[ObserverKind::mse].second));
  CHECK(mse_error <= minmax_error * 1.001);  // (its search is over bin centres, so allow for that)
  MESSAGE("upper clip: minmax 100, percentile " << ranges[ObserverKind::percentile].second << ", kl " << ranges[ObserverKind::kl].second
          << ", mse " << ranges[ObserverKind::mse].second << " (squared error " << mse_error << " against min-max's " << minmax_error << ")");
}

namespace {

// Calibrates a fused random model, then runs the integer model and the fake-quant simulation on
// other images. Node by node — the simulation fed the integer runtime's values, so that each node is
// compared on the same inputs — every quantized output must agree within one step on ≥ 99.9 % of its
// elements. End to end (each on its own values, where rare one-step differences propagate) the
// agreement and the raw maps' difference are reported.
// `mixed` (when given) keeps some convs in float after calibration.
// A fused yolov7-tiny with random weights and batch-norm statistics (which keep every layer's range
// wide: a freshly built model's head inputs span ~1e-5, where the int32 biases would saturate),
// calibrated on two random 8-bit images.
struct CalibratedModel {
  models::YoloModel model;
  QuantPlan plan;
  CalibratedModel(uint64_t seed, ObserverKind observer = ObserverKind::minmax, int64_t nc = 3)
      : model(test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", seed, nc)) {
    graph::fuse(model.graph);
    model.graph.eval();
    plan = plan_quantization(model.graph);
    int calls = 0;
    calibrate(model.graph, plan, observer, [&] { return calls++ < 1 ? test::eight_bit_images(2, 64, seed + 100) : Tensor(); });
  }
};

// The model is calibrated on `calibration` and run on `images` (8-bit: k/255).
void check_integer_against_simulation(models::YoloModel m, const std::string& what, const std::vector<Tensor>& calibration, const Tensor& images,
                                      const std::function<void(const graph::Graph&, QuantPlan&)>& mixed = nullptr) {
  graph::fuse(m.graph);
  m.graph.eval();
  QuantPlan plan = plan_quantization(m.graph);
  size_t calls = 0;
  calibrate(m.graph, plan, ObserverKind::minmax, [&] { return calls < calibration.size() ? calibration[calls++] : Tensor(); });
  if (mixed) mixed(m.graph, plan);
  const IntegerModel integer(m.graph, plan);
  const Simulation sim = simulate(m.graph, plan);
  const Agreement local = measure_agreement(integer, sim, images, true), end_to_end = measure_agreement(integer, sim, images, false);
  CHECK(local.values > 100000);
  CHECK(local.worst >= 0.999);
  CHECK(end_to_end.raw_difference < 0.05);
  MESSAGE(what << ", " << local.values << " quantized values. Node by node: " << describe(local) << ". End to end: " << describe(end_to_end)
               << "; raw maps differ by at most " << end_to_end.raw_difference << " (relative to max(1, their largest |value|))");
}

// A config with random weights (and random batch-norm statistics), on random 8-bit images.
void check_integer_against_simulation(const std::string& cfg, int64_t size,
                                      const std::function<void(const graph::Graph&, QuantPlan&)>& mixed = nullptr) {
  check_integer_against_simulation(test::randomised_model(cfg, 21), cfg.substr(cfg.rfind('/') + 1) + " at " + std::to_string(size),
                                   {test::eight_bit_images(2, size, 101), test::eight_bit_images(2, size, 102)}, test::eight_bit_images(1, size, 7), mixed);
}

}  // namespace

TEST_CASE("integer runtime against the fake-quant simulation: real weights (the COCO128 fixture checkpoint) on real images" *
          doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) return test::skip("../shared is absent; no fixture checkpoint or dataset");
  const data::Dataset ds = data::load_voc(shared + "/data/coco128-voc", {"train2017"});
  const auto letterboxed = [&](size_t first, size_t count) {
    std::vector<data::Image> images;
    for (size_t k = first; k < first + count; ++k) images.push_back(data::letterbox(data::load_image(ds.samples[k].image_path), 320, 320).image);
    return data::images_to_tensor(images);
  };
  check_integer_against_simulation(models::load_model(shared + "/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt"),
                                   "yolov7-tiny-coco128.pt at 320, calibrated on 8 COCO128 images", {letterboxed(0, 4), letterboxed(4, 4)},
                                   letterboxed(8, 1));
}

TEST_CASE("the sensitivity analysis quantizes each conv alone, ranks them by the fitness they leave, and writes its report" *
          doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) return test::skip("../shared is absent; no fixture checkpoint or dataset");
  data::Dataset ds = data::load_voc(shared + "/data/coco128-voc", {"train2017"});
  ds.samples.resize(3);
  models::YoloModel m = models::load_model(shared + "/fixtures/yolov7-tiny-coco128/yolov7-tiny-coco128.pt");
  graph::fuse(m.graph);
  m.graph.eval();
  QuantPlan plan = plan_quantization(m.graph);
  std::vector<data::Image> images;
  for (const data::Sample& sample : ds.samples) images.push_back(data::letterbox(data::load_image(sample.image_path), 128, 128).image);
  int calls = 0;
  calibrate(m.graph, plan, ObserverKind::percentile, [&] { return calls++ < 1 ? data::images_to_tensor(images) : Tensor(); });
  eval::EvalOptions eo;
  eo.img_size = 128;
  eo.progress = false;
  const std::vector<LayerSensitivity> layers = measure_sensitivity(m.graph, plan, ds, eo, false);
  int64_t convs = 0;
  for (const graph::Node& n : m.graph.nodes) convs += n.op == graph::Op::conv;
  REQUIRE(static_cast<int64_t>(layers.size()) == convs);
  // Each row is the evaluation of that conv's simulation alone.
  const LayerSensitivity& probe = layers[layers.size() / 2];
  const eval::Metrics direct = evaluate_simulation(simulate(m.graph, plan, probe.node), ds, eo).metrics;
  CHECK(direct.map50 == probe.metrics.map50);
  CHECK(direct.map50_95 == probe.metrics.map50_95);
  // Quantizing a conv changes the detections somewhere, and the ranking puts the least fitness first.
  const eval::Metrics float_metrics =
      eval::evaluate_with([&](const Tensor& x) { return graph::forward(m.graph, x).decoded; }, ds, eo).metrics;
  int64_t changed = 0;
  for (const LayerSensitivity& l : layers) changed += l.fitness() != eval::fitness(float_metrics);
  CHECK(changed > 0);
  const std::vector<LayerSensitivity> ranked = by_sensitivity(layers);
  for (size_t k = 1; k < ranked.size(); ++k) CHECK(ranked[k - 1].fitness() <= ranked[k].fitness());
  MESSAGE(changed << " of " << convs << " convs change the fitness when quantized alone; worst " << m.graph.nodes[static_cast<size_t>(ranked[0].node)].name
                  << " (fitness " << ranked[0].fitness() << ", float " << eval::fitness(float_metrics) << ")");
  const std::string dir = test::temp_path("sensitivity_report");
  write_sensitivity_report(dir, m.graph, layers, float_metrics);
  std::ifstream csv(dir + "/sensitivity.csv");
  int64_t lines = 0;
  for (std::string line; std::getline(csv, line);) ++lines;
  CHECK(lines == convs + 1);
  CHECK(std::filesystem::file_size(dir + "/sensitivity.png") > 1000);
  std::filesystem::remove_all(dir);
}

TEST_CASE("integer runtime against the fake-quant simulation: yolov7-tiny, every node within one step") {
  check_integer_against_simulation(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 64);
}

TEST_CASE("integer runtime against the fake-quant simulation: yolov7 (RepConv and implicits fused)") {
  check_integer_against_simulation(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7.yaml", 64);
}

TEST_CASE("integer runtime against the fake-quant simulation: residual adds (yolov3's Bottleneck), their inputs sharing one scale") {
  const std::string path = test::temp_path("quant_residual.yaml");
  test::write_text(path, R"(nc: 2
anchors:
  - [10,13, 16,30]
  - [30,61, 62,45]
backbone:
  [[-1, 1, Conv, [16, 3, 2]],
   [-1, 2, Bottleneck, [16]],
   [-1, 1, Conv, [32, 3, 2]],
   [-1, 1, Bottleneck, [32]],
   [-1, 1, Bottleneck, [32, False]],
   [-1, 1, Conv, [64, 3, 2]],
   [-1, 2, Bottleneck, [64]],
   [[3, 6], 1, Detect, [nc, anchors]],
  ]
head: []
)");
  check_integer_against_simulation(path, 64);
  models::YoloModel m = test::randomised_model(path, 2);
  std::remove(path.c_str());
  graph::fuse(m.graph);
  const QuantPlan plan = plan_quantization(m.graph);
  int adds = 0;
  for (size_t i = 0; i < m.graph.nodes.size(); ++i)
    if (m.graph.nodes[i].op == graph::Op::add) {
      ++adds;
      CHECK(plan.group_of[static_cast<size_t>(m.graph.nodes[i].inputs[0])] == plan.group_of[static_cast<size_t>(m.graph.nodes[i].inputs[1])]);
      CHECK(plan.group_of[i] != plan.group_of[static_cast<size_t>(m.graph.nodes[i].inputs[0])]);
    }
  CHECK(adds == 5);  // 2 + 1 + 0 (no shortcut) + 2
}

TEST_CASE("mixed precision: every 4th conv and the detect head in float, the integer runtime still within one step") {
  int kept = 0;
  check_integer_against_simulation(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 64,
                                   [&](const graph::Graph& g, QuantPlan& plan) {
                                     std::vector<std::string> names;
                                     int convs = 0;
                                     for (const graph::Node& n : g.nodes)
                                       if (n.op == graph::Op::conv && convs++ % 4 == 1) names.push_back(n.name);
                                     keep_in_float(g, plan, names);
                                     keep_head_in_float(g, plan);
                                     for (size_t i = 0; i < g.nodes.size(); ++i) kept += plan.in_float(static_cast<int>(i));
                                   });
  CHECK(kept > 15);
}

TEST_CASE("mixed precision: names of convs or layers; an unknown name is an error") {
  models::YoloModel m = test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3);
  graph::fuse(m.graph);
  QuantPlan plan = plan_quantization(m.graph);
  const int first = 1;  // node 0 is the image
  REQUIRE(m.graph.nodes[first].op == graph::Op::conv);
  const std::string layer = m.graph.nodes[first].name.substr(0, m.graph.nodes[first].name.rfind('.'));  // "model.0"
  keep_in_float(m.graph, plan, {layer});
  CHECK(plan.in_float(first));
  int kept = 0;
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) kept += plan.in_float(static_cast<int>(i));
  CHECK(kept == 1);
  CHECK(test::error_of([&] { keep_in_float(m.graph, plan, {"model.999"}); }).find("'model.999' names no conv") != std::string::npos);
}

TEST_CASE("sensitivity: simulating one layer quantizes that conv and its activation, and nothing before or beside it") {
  CalibratedModel calibrated(4);
  models::YoloModel& m = calibrated.model;
  const QuantPlan& plan = calibrated.plan;
  int layer = -1, convs = 0;
  for (int i = 0; i < static_cast<int>(m.graph.nodes.size()); ++i)
    if (m.graph.nodes[static_cast<size_t>(i)].op == graph::Op::conv && ++convs == 5) layer = i;
  const int act = fused_activation(m.graph, layer);
  REQUIRE(act > layer);
  const Simulation sim = simulate(m.graph, plan, layer);
  CHECK(sim.taps.size() == 2);
  CHECK(sim.taps.count(layer) == 1);
  CHECK(sim.taps.count(act) == 1);
  for (size_t i = 0; i < m.graph.nodes.size(); ++i)
    if (m.graph.nodes[i].op == graph::Op::conv) {
      const double diff = test::max_rel_diff(sim.graph.nodes[i].tensor("weight"), m.graph.nodes[i].tensor("weight"));
      if (static_cast<int>(i) == layer) CHECK(diff > 0);
      else CHECK(diff == 0);
    }
  // Its activation's output lies on its quantizer's grid; the float graph's does not.
  std::vector<Tensor> seen(m.graph.nodes.size());
  graph::Taps record = sim.taps;
  record[act] = [&, tap = sim.taps.at(act)](const Tensor& x) { return seen[static_cast<size_t>(act)] = tap(x); };
  graph::RunOptions run;
  run.taps = &record;
  NoGradGuard no_grad;
  graph::forward(sim.graph, test::eight_bit_images(1, 64, 12), run);
  const QParams p = plan.of(act);
  for (float v : seen[static_cast<size_t>(act)].to_vector()) {
    const double level = v / p.scale + p.zero_point;
    REQUIRE(std::fabs(level - std::nearbyint(level)) < 1e-3);
  }
}

TEST_CASE("the plan shares one quantizer across concat, max-pool and upsample, and keeps the head in float") {
  models::YoloModel m = test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3);
  graph::fuse(m.graph);
  const QuantPlan plan = plan_quantization(m.graph);
  int shared = 0;
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) {
    const graph::Node& n = m.graph.nodes[i];
    if (n.op == graph::Op::concat || n.op == graph::Op::max_pool || n.op == graph::Op::upsample)
      for (int in : n.inputs) {
        CHECK(plan.group_of[static_cast<size_t>(in)] == plan.group_of[i]);
        ++shared;
      }
  }
  CHECK(shared > 20);
  for (int in : m.graph.nodes[static_cast<size_t>(m.graph.detect_node())].inputs) CHECK(!plan.quantized(in));
  CHECK(plan.of(0).scale == 1.0f / 255.0f);
  CHECK(plan.of(0).zero_point == 0);
  models::YoloModel unfused = test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3);
  CHECK(test::error_of([&] { plan_quantization(unfused.graph); }).find("fuse") != std::string::npos);
}

TEST_CASE("the int8 model file: a quarter of the float size, and the integer runtime computes exactly what was saved") {
  CalibratedModel calibrated(5, ObserverKind::percentile);
  models::YoloModel& m = calibrated.model;
  const QuantPlan& plan = calibrated.plan;
  const IntegerModel integer(m.graph, plan);
  const std::string path = test::temp_path("int8.safetensors"), float_path = test::temp_path("float.safetensors");
  save_quantized(path, m, integer, "percentile");
  models::save_model(float_path, m);
  const double ratio = static_cast<double>(std::filesystem::file_size(path)) / static_cast<double>(std::filesystem::file_size(float_path));
  CHECK(ratio < 0.27);
  const QuantizedModel loaded = load_quantized(path);
  const IntegerModel reloaded(loaded.model.graph, loaded.plan);
  const Tensor images = test::eight_bit_images(1, 64, 9);
  const graph::DetectOutput a = integer.run(images), b = reloaded.run(images);
  for (size_t l = 0; l < a.raw.size(); ++l) CHECK(test::max_rel_diff(a.raw[l], b.raw[l]) == 0);
  CHECK(test::max_rel_diff(a.decoded, b.decoded) == 0);
  for (size_t i = 0; i < m.graph.nodes.size(); ++i)
    if (m.graph.nodes[i].op == graph::Op::conv) {
      CHECK(integer.conv(static_cast<int>(i)).weight == reloaded.conv(static_cast<int>(i)).weight);
      CHECK(integer.conv(static_cast<int>(i)).bias == reloaded.conv(static_cast<int>(i)).bias);
    }
  MESSAGE("int8 file " << std::filesystem::file_size(path) << " bytes, float " << std::filesystem::file_size(float_path) << " (" << 100 * ratio << " %)");
  // Mixed precision: the convs kept in float are stored as float and come back so.
  QuantPlan mixed = plan;
  keep_in_float(m.graph, mixed, {m.graph.nodes[1].name});
  keep_head_in_float(m.graph, mixed);
  const IntegerModel mixed_integer(m.graph, mixed);
  save_quantized(path, m, mixed_integer, "percentile");
  const QuantizedModel mixed_loaded = load_quantized(path);
  for (size_t i = 0; i < m.graph.nodes.size(); ++i) CHECK(mixed_loaded.plan.in_float(static_cast<int>(i)) == mixed.in_float(static_cast<int>(i)));
  CHECK(test::max_rel_diff(mixed_loaded.model.graph.nodes[1].tensor("weight"), m.graph.nodes[1].tensor("weight")) == 0);
  const graph::DetectOutput c = mixed_integer.run(images), d = IntegerModel(mixed_loaded.model.graph, mixed_loaded.plan).run(images);
  for (size_t l = 0; l < c.raw.size(); ++l) CHECK(test::max_rel_diff(c.raw[l], d.raw[l]) == 0);
  CHECK(test::error_of([&] { load_quantized(float_path); }).find("not an int8 model file") != std::string::npos);
  // A quantizer out of range is refused at load: an activation scale of 1e38 once reached an undefined
  // float → int64 conversion under UBSan; a zero point of 1e300 one to int32.
  save_quantized(path, m, integer, "percentile");
  const io::SafetensorsContent saved = io::load_safetensors(path);
  auto with_group = [&](double scale, double zero_point) {
    io::Value q = io::parse_json(saved.metadata.at("pdyolo.quant"), "test");
    io::Value& group = const_cast<io::Value&>(*q.find("groups")).items.at(1);
    group.items = {io::Value::make_real(scale), io::Value::make_real(zero_point)};
    auto metadata = saved.metadata;
    metadata["pdyolo.quant"] = io::to_json(q);
    io::save_safetensors(path, saved.tensors, metadata);
    return test::error_of([&] { load_quantized(path); });
  };
  CHECK(with_group(1e38, 3).find("group 1 has scale 1e+38 and zero point 3 (a scale lies in [1e-20, 1e+20]") != std::string::npos);
  CHECK(with_group(0.05, 1e300).find("group 1 has scale 0.05 and zero point 1e+300") != std::string::npos);
  CHECK(with_group(0.05, 2.5).find("zero point 2.5") != std::string::npos);
  CHECK(with_group(1e-30, 0).find("group 1 has scale 1e-30") != std::string::npos);
  CHECK(with_group(0.05, 3).empty());
  std::remove(path.c_str());
  std::remove(float_path.c_str());
}

TEST_CASE("round_half_even saturates: no input makes the float → integer conversion undefined") {
  CHECK(round_half_even(2.5) == 2);
  CHECK(round_half_even(-3.5) == -4);
  CHECK(round_half_even(1e300) == kRoundingLimit);
  CHECK(round_half_even(-1e300) == -kRoundingLimit);
  CHECK(round_half_even(std::numeric_limits<double>::infinity()) == kRoundingLimit);
  CHECK(round_half_even(-std::numeric_limits<double>::infinity()) == -kRoundingLimit);
  CHECK(round_half_even(std::numeric_limits<double>::quiet_NaN()) == 0);
  CHECK(quantize_activation(std::numeric_limits<float>::infinity(), {0.1f, 3}) == 255);
  CHECK(quantize_activation(-std::numeric_limits<float>::infinity(), {0.1f, 3}) == 0);
}

namespace {

std::vector<float> state_of(const QatQuantizers& q) { return q.state().to_vector(); }

}  // namespace

TEST_CASE("QAT: its taps compute the fake-quant simulation of the model they train") {
  CalibratedModel s(6, ObserverKind::minmax, 2);
  QatQuantizers q(s.model.graph, s.plan, {});
  const graph::Taps taps = q.training_taps([] { return int64_t{0}; });
  const graph::WeightTaps weight_taps = q.weight_taps();
  const Tensor images = test::eight_bit_images(2, 64, 32);
  graph::RunOptions run;
  run.taps = &taps;
  run.weight_taps = &weight_taps;
  const graph::DetectOutput trained_form = graph::forward(s.model.graph, images, run);
  const Simulation sim = simulate(s.model.graph, q.plan_for(s.model.graph));
  graph::RunOptions sim_run;
  sim_run.taps = &sim.taps;
  NoGradGuard no_grad;
  const graph::DetectOutput simulated = graph::forward(sim.graph, images, sim_run);
  double diff = 0;
  for (size_t l = 0; l < simulated.raw.size(); ++l) diff = std::max(diff, test::max_rel_diff(trained_form.raw[l], simulated.raw[l]));
  CHECK(diff < 1e-3);  // the same model but for the int32 rounding of the biases (rare one-level flips)
  MESSAGE("QAT forward against the simulation: raw maps differ by at most " << diff);
}

TEST_CASE("QAT: fake-quantized weights pass the straight-through gradient to the float weights") {
  CalibratedModel s(6, ObserverKind::minmax, 2);
  QatQuantizers q(s.model.graph, s.plan, {});
  const graph::WeightTaps weight_taps = q.weight_taps();
  graph::Node& conv = s.model.graph.nodes[1];
  REQUIRE(weight_taps.count(1));
  conv.tensor("weight").set_requires_grad();
  const Tensor w = conv.tensor("weight");
  const Tensor fq = weight_taps.at(1)(w);
  CHECK(test::max_rel_diff(fq, w) > 0);
  sum(fq * fq).backward();  // d/dw Σ fq(w)² = 2·fq(w) inside the range (every weight is: symmetric scales)
  const std::vector<float> g = w.grad().to_vector(), f = fq.detach().to_vector();
  int64_t exact = 0;
  for (size_t i = 0; i < g.size(); ++i) exact += g[i] == 2 * f[i];
  CHECK(exact == static_cast<int64_t>(g.size()));
}

TEST_CASE("QAT: ranges move for the stated number of steps, then freeze; a resumed run continues exactly") {
  const std::string root = test::temp_path("qat_data"), straight = test::temp_path("qat_straight"), split = test::temp_path("qat_split");
  const data::Dataset ds = test::synthetic_dataset(root);
  std::ostringstream log;
  // One trainer with its quantizers (observers moving for 2 steps).
  auto make = [&](const std::string& out, int64_t max_steps, std::unique_ptr<QatQuantizers>& q) {
    CalibratedModel s(6, ObserverKind::minmax, 2);
    q = std::make_unique<QatQuantizers>(s.model.graph, s.plan, QatOptions{2, 0.01});
    train::TrainOptions o = test::small_run(out, 3);
    o.max_steps = max_steps;
    auto t = std::make_unique<train::Trainer>(std::move(s.model), ds, &ds, test::tiny_hyp(), o);
    t->add_taps(q->training_taps([t = t.get()] { return t->iteration(); }));
    t->set_weight_taps(q->weight_taps());
    t->add_state("qat.quantizers", q->state());
    return t;
  };
  std::unique_ptr<QatQuantizers> qa;
  auto a = make(straight, -1, qa);
  // Step by step: the ranges move in steps 1 and 2, not in step 3.
  data::LoaderOptions lo;
  lo.img_size = 64, lo.batch_size = 3, lo.workers = 0;
  data::DataLoader loader(ds, lo);
  loader.start_epoch(0);
  data::Batch batch;
  REQUIRE(loader.next(batch));
  {
    std::unique_ptr<QatQuantizers> qs;
    auto stepped = make(test::temp_path("qat_steps"), -1, qs);
    const std::vector<float> s0 = state_of(*qs);
    stepped->step(batch, 100);
    const std::vector<float> s1 = state_of(*qs);
    stepped->step(batch, 100);
    const std::vector<float> s2 = state_of(*qs);
    stepped->step(batch, 100);
    CHECK(s1 != s0);
    CHECK(s2 != s1);
    CHECK(state_of(*qs) == s2);
  }
  REQUIRE(a->run(log).size() == 3);
  {
    std::unique_ptr<QatQuantizers> qb;
    auto b = make(split, 4, qb);  // stopped after 2 of the 3 epochs
    CHECK(b->run(log).size() == 2);
  }
  std::unique_ptr<QatQuantizers> qc;
  auto c = make(split, -1, qc);
  c->resume(split + "/last.safetensors");
  REQUIRE(c->run(log).size() == 1);
  CHECK(state_of(*qc) == state_of(*qa));
  int64_t differing = 0;
  for (const auto& [name, t] : a->graph().state_dict()) differing += t.to_vector() != c->graph().state_dict().at(name).to_vector();
  CHECK(differing == 0);
  for (const std::string& d : {root, straight, split}) std::filesystem::remove_all(d);
}
