// YOLOv7 models: the YAML reader, configs, exact sizes, checkpoints (.pt and safetensors), fusion,
// parity with the reference implementation's outputs, and bad input.
#include "test_main.hpp"

#include <fstream>
#include <map>

#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "test_util.hpp"

using namespace pdyolo;

namespace {

const std::string kSource = PDYOLO_SOURCE_DIR;
std::string cfg_path(const std::string& name) { return kSource + "/cfg/" + name; }


std::string fixture_dir() {
  const std::string shared = test::shared_dir();
  return shared.empty() ? "" : shared + "/fixtures/yolov7-tiny-coco128/";
}

// Random BN statistics and affine parameters, so fusion has something real to fold.
void randomize_norms(graph::Graph& g, uint64_t seed) {
  Generator gen(seed);
  for (auto& [name, t] : g.named_buffers()) {
    if (name.find("running_mean") != std::string::npos) Tensor(t).copy_(Tensor::uniform(t.shape(), -0.3f, 0.3f, gen));
    if (name.find("running_var") != std::string::npos) Tensor(t).copy_(Tensor::uniform(t.shape(), 0.5f, 2.0f, gen));
  }
  for (auto& [name, t] : g.named_parameters())
    if (t.dim() == 1 || name.find("implicit") != std::string::npos)
      Tensor(t).detach().copy_(Tensor::uniform(t.shape(), 0.5f, 1.5f, gen));
}

// Decoded outputs before and after fuse() for a random input.
double fused_difference(models::YoloModel& m, int64_t h, int64_t w) {
  randomize_norms(m.graph, 7);
  m.graph.eval();
  Generator gen(8);
  const Tensor x = Tensor::uniform({1, 3, h, w}, 0, 1, gen);
  NoGradGuard no_grad;
  const graph::DetectOutput before = graph::forward(m.graph, x);
  graph::fuse(m.graph);
  const graph::DetectOutput after = graph::forward(m.graph, x);
  double worst = test::max_rel_diff(after.decoded, before.decoded);
  for (size_t l = 0; l < before.raw.size(); ++l) worst = std::max(worst, test::max_rel_diff(after.raw[l], before.raw[l]));
  return worst;
}

}  // namespace

TEST_CASE("YAML reader: the forms the official configs use") {
  const io::Value v = io::parse_yaml(R"(# comment
nc: 80  # classes
depth_multiple: 0.33
name: 'quoted # not a comment'
anchors:
  - [10,13, 16,30]  # P3
  - [30,61, 62,45]
nested:
  a: 1
  b: [x, nn.LeakyReLU(0.1), None, 'nearest', -2, 1e-3, true]
rows:
  [[-1, 1, Conv, [32, 3]],
   [[-1, -2], 1, Concat, [1]],
  ]
)", "inline.yaml");
  CHECK(v.find("nc")->integer == 80);
  CHECK(v.find("nc")->line == 2);
  CHECK(v.find("depth_multiple")->real == doctest::Approx(0.33));
  CHECK(v.find("name")->str == "quoted # not a comment");
  CHECK(v.find("anchors")->items.size() == 2);
  CHECK(v.find("anchors")->items[1].items[3].integer == 45);
  const io::Value& b = *v.find("nested")->find("b");
  CHECK(b.items[1].str == "nn.LeakyReLU(0.1)");
  CHECK(b.items[2].str == "None");
  CHECK(b.items[3].str == "nearest");
  CHECK(b.items[4].integer == -2);
  CHECK(b.items[5].real == doctest::Approx(1e-3));
  CHECK(b.items[6].boolean);
  const io::Value& rows = *v.find("rows");
  CHECK(rows.items.size() == 2);
  CHECK(rows.items[1].items[0].items[1].integer == -2);
  CHECK(rows.items[1].line == 13);

  CHECK(test::error_of([] { io::parse_yaml("a: [1, 2\nb: 3\n", "bad.yaml"); }).find("bad.yaml:1") != std::string::npos);
  CHECK(test::error_of([] { io::parse_yaml("a: 1\nnot a mapping line\n", "bad.yaml"); }).find("bad.yaml:2: expected 'key: value'") !=
        std::string::npos);
  CHECK(test::error_of([] { io::parse_yaml("a: 1\na: 2\n", "dup.yaml"); }).find("dup.yaml:2: duplicate key 'a'") != std::string::npos);
  CHECK(test::error_of([] { io::parse_yaml("a:\n\t- 1\n", "tab.yaml"); }).find("tab") != std::string::npos);
  // Blocks indented deeper than 64 levels (each one a recursion), and flow lists nested 100 000 deep:
  // errors, not stack overflows.
  std::string deep;
  for (int i = 0; i < 200; ++i) deep += std::string(static_cast<size_t>(i), ' ') + "k:\n";
  CHECK(test::error_of([&] { io::parse_yaml(deep, "deep.yaml"); }).find("deep.yaml:65: blocks nested deeper than 64 levels") !=
        std::string::npos);
  CHECK(test::error_of([] { io::parse_yaml("a: " + std::string(100000, '[') + std::string(100000, ']') + "\n", "flow.yaml"); })
            .find("nesting deeper than 64 levels") != std::string::npos);
}

TEST_CASE("every shipped config parses, and hyperparameter files read as numbers") {
  for (const char* name : {"training/yolov7-tiny.yaml", "training/yolov7.yaml", "training/yolov7x.yaml", "deploy/yolov7-tiny.yaml",
                           "deploy/yolov7-tiny-silu.yaml", "deploy/yolov7.yaml", "deploy/yolov7x.yaml"}) {
    CAPTURE(name);
    const models::ModelConfig cfg = models::load_model_config(cfg_path(name));
    CHECK(cfg.anchors.size() == 3);
    CHECK(cfg.layers.back().module.find("Detect") != std::string::npos);
  }
  const io::Value hyp = io::load_yaml(cfg_path("hyp/hyp.scratch.tiny.yaml"));
  CHECK(hyp.find("lr0")->as_double() == doctest::Approx(0.01));
  CHECK(hyp.find("anchor_t")->as_double() == doctest::Approx(4.0));
}

TEST_CASE("parameter counts and GFLOPs equal the reference implementation's") {
  struct Expected {
    const char* cfg;
    int64_t nc, params;
    double gflops;
  };
  const Expected expected[] = {
      {"training/yolov7-tiny.yaml", 80, 6228762, 13.70}, {"training/yolov7-tiny.yaml", 20, 6066402, 13.19},
      {"training/yolov7.yaml", 80, 37622682, 105.77},    {"training/yolov7.yaml", 20, 37299042, 104.74},
  };
  for (const Expected& e : expected) {
    CAPTURE(e.cfg);
    CAPTURE(e.nc);
    const models::YoloModel m = models::build_yolo(models::load_model_config(cfg_path(e.cfg), e.nc));
    CHECK(m.graph.parameter_count() == e.params);
    CHECK(m.graph.conv_flops(640) / 1e9 == doctest::Approx(e.gflops).epsilon(0.0005));
  }
  // The rest of the family builds for any class count; deploy configs differ only by the implicit layers.
  for (const char* name : {"training/yolov7x.yaml", "deploy/yolov7.yaml", "deploy/yolov7-tiny-silu.yaml"})
    for (int64_t nc : {1, 20, 80}) {
      const models::YoloModel m = models::build_yolo(models::load_model_config(cfg_path(name), nc));
      CHECK(m.graph.parameter_count() > 0);
    }
  const int64_t train = models::build_yolo(models::load_model_config(cfg_path("training/yolov7.yaml"))).graph.parameter_count();
  const int64_t deploy = models::build_yolo(models::load_model_config(cfg_path("deploy/yolov7.yaml"))).graph.parameter_count();
  CHECK(train - deploy == 256 + 512 + 1024 + 3 * 255);  // ImplicitA per input channel, ImplicitM per output
}

TEST_CASE("width and depth multiples and strides") {
  const models::ModelConfig cfg = models::load_model_config(cfg_path("training/yolov7-tiny.yaml"));
  models::ModelConfig narrow = cfg;
  narrow.width_multiple = 0.5;
  const models::YoloModel m = models::build_yolo(narrow);
  CHECK(m.graph.channels(m.graph.layer_output[0]) == 16);   // 32 · 0.5
  CHECK(m.graph.channels(m.graph.layer_output[28]) == 256);  // 512 · 0.5
  const auto& detect = m.graph.nodes[m.graph.detect_node()].get<graph::DetectAttrs>();
  CHECK(detect.strides == std::vector<float>{8, 16, 32});
  // Anchors are stored as the reference stores them: in grid units, and in pixels for decoding.
  const graph::Node& d = m.graph.nodes[m.graph.detect_node()];
  CHECK(d.tensor("anchors").at({2, 2, 1}) == doctest::Approx(326.0 / 32));
  CHECK(d.tensor("anchor_grid").at({2, 0, 2, 0, 0, 1}) == doctest::Approx(326.0));
}

TEST_CASE("official parameter names") {
  const models::YoloModel m = models::build_yolo(models::load_model_config(cfg_path("training/yolov7.yaml")));
  const auto sd = m.graph.state_dict();
  for (const char* name : {"model.0.conv.weight", "model.0.bn.running_var", "model.51.cv7.bn.bias", "model.102.rbr_dense.0.weight",
                           "model.102.rbr_1x1.1.running_mean", "model.105.m.2.bias", "model.105.ia.0.implicit",
                           "model.105.im.2.implicit", "model.105.anchors", "model.105.anchor_grid"})
    CHECK_MESSAGE(sd.count(name), name);
}

TEST_CASE("bad configs are reported with the line and the field") {
  const std::string path = test::temp_path("bad_cfg.yaml");
  const std::string head = "nc: 4\nanchors:\n  - [10,13, 16,30, 33,23]\nbackbone:\n  [[-1, 1, Conv, [16, 3, 2]],\n";
  test::write_text(path, head + "   [-1, 1, Mystery, [3]]]\nhead: []\n");
  CHECK(test::error_of([&] { models::load_model_config(path); }).find("bad_cfg.yaml:6: layer 1: field 'module': unknown module 'Mystery'") !=
        std::string::npos);
  test::write_text(path, head + "   [5, 1, Conv, [8]]]\nhead: []\n");
  CHECK(test::error_of([&] { models::load_model_config(path); }).find(":6: layer 1: field 'from'") != std::string::npos);
  test::write_text(path, head + "   [-1, 1, Conv]]\nhead: []\n");
  CHECK(test::error_of([&] { models::load_model_config(path); }).find(":6: layer 1: expected [from, number, module, args]") != std::string::npos);
  test::write_text(path, "nc: four\n");
  CHECK(test::error_of([&] { models::load_model_config(path); }).find(":1: field 'nc'") != std::string::npos);
  test::write_text(path, head + "   [-1, 1, Conv, [8, 3, 1, None, 1, nn.Swish()]]]\nhead:\n  [[-1, 1, Detect, [nc, anchors]]]\n");
  const models::ModelConfig cfg = models::load_model_config(path);
  CHECK(test::error_of([&] { models::build_yolo(cfg); }).find(":6: layer 1 (Conv): argument 'act': unknown activation 'nn.Swish()'") !=
        std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("hostile configs: out-of-range numbers end in an error naming the file, the line and the layer") {
  const std::string path = test::temp_path("hostile_cfg.yaml");
  const std::string anchors = "anchors:\n  - [10,13, 16,30, 33,23]\n";
  auto build_error = [&](const std::string& dict_fields, const std::string& layer) {
    test::write_text(path, "nc: 4\n" + dict_fields + anchors + "backbone:\n  [[-1, 1, Conv, [16, 3, 2]],\n   " + layer +
                         "]\nhead:\n  [[-1, 1, Detect, [nc, anchors]]]\n");
    return test::error_of([&] { models::build_yolo(models::load_model_config(path)); });
  };
  // Stride 0 once divided by zero in shape inference; 1e9 channels asked for gigabytes; 0 channels passed.
  CHECK(build_error("", "[-1, 1, Conv, [16, 3, 0]]").find("hostile_cfg.yaml:6: layer 1 (Conv): argument 's' is 0; it must lie in [1, 64]") !=
        std::string::npos);
  CHECK(build_error("", "[-1, 1, Conv, [1000000000, 3, 1]]").find(":6: layer 1 (Conv): argument 'c2' is 1000000000") != std::string::npos);
  CHECK(build_error("", "[-1, 1, Conv, [0, 3, 1]]").find("argument 'c2' is 0") != std::string::npos);
  CHECK(build_error("", "[-1, 1, Conv, [-8, 3, 1]]").find(":6: layer 1 (Conv): argument 'c2' is -8") != std::string::npos);
  CHECK(build_error("", "[-1, 1, Conv, [8, [0, 0], 1]]").find("argument 'k' must lie in [1, 64]") != std::string::npos);
  CHECK(build_error("", "[-1, 1, nn.Upsample, [None, 1000, 'nearest']]").find("argument 'scale_factor' is 1000") != std::string::npos);
  // Multiples of 1e300 once overflowed the float → int conversion.
  CHECK(build_error("width_multiple: 1e300\n", "[-1, 1, Conv, [8, 3, 1]]").find("hostile_cfg.yaml:2: field 'width_multiple' is 1e+300") !=
        std::string::npos);
  CHECK(build_error("depth_multiple: -1\n", "[-1, 1, Conv, [8, 3, 1]]").find("field 'depth_multiple' is -1") != std::string::npos);
  CHECK(build_error("ch: 1e300\n", "[-1, 1, Conv, [8, 3, 1]]").find("field 'ch' is 1e+300") != std::string::npos);
  // A 'from' of 2^32 + 1 was truncated to layer 1.
  CHECK(build_error("", "[4294967297, 1, Conv, [8, 3, 1]]").find(":6: layer 1: field 'from' refers to layer 4294967297") !=
        std::string::npos);
  CHECK(build_error("", "[-1, 1000000, Conv, [8, 3, 1]]").find("field 'number' must be an integer in [1, 1000]") != std::string::npos);
  // An empty 'from' list was read at [0] (found by fuzz_config's long run after 2.5 million executions).
  CHECK(build_error("", "[[], 1, Conv, [8, 3, 1]]").find(":6: layer 1: field 'from' is an empty list") != std::string::npos);
  // Weights are counted before they are allocated (a 65536-channel 64x64 conv is 4.3e9 parameters),
  // and concats that double their channels (an overflow and an exponential walk) stop at kMaxChannels.
  CHECK(build_error("", "[-1, 1, Conv, [65536, 64, 1]]").find(":6: layer 1 (Conv): the model would hold more than 2147483648 parameters") !=
        std::string::npos);
  // A layer after Detect read its (shapeless) output: an out-of-bounds read found by fuzz_config.
  test::write_text(path, "nc: 4\n" + anchors + "backbone:\n  [[-1, 1, Conv, [16, 3, 2]]]\nhead:\n  [[-1, 1, Detect, [nc, anchors]],\n   [-1, 1, Conv, [8, 3, 1]]]\n");
  CHECK(test::error_of([&] { models::build_yolo(models::load_model_config(path)); }).find("layer 2 (Conv): a layer after the Detect layer") !=
        std::string::npos);
  std::string doubling;
  for (int i = 0; i < 13; ++i) doubling += "[[-1, -1], 1, Concat, [1]],\n   ";
  CHECK(build_error("", doubling).find("layer 13 (Concat): the concat would have more than 65536 channels") != std::string::npos);
  test::write_text(path, "nc: 4\n" + anchors + "backbone:\n  [[-1, 1, Conv, [16, 3, 2]]]\nhead:\n  [[-1, 1, Detect, [nc, anchors]]]\n");
  models::BuildOptions small;
  small.max_parameters = 400;  // 16·3·3·3 = 432 conv weights
  CHECK(test::error_of([&] { models::build_yolo(models::load_model_config(path), small); }).find("more than 400 parameters (432 so far)") !=
        std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("RepConv training form, an identity branch, and deploy form all build and fuse exactly") {
  const std::string path = test::temp_path("repconv.yaml");
  test::write_text(path, R"(nc: 3
anchors:
  - [10,13, 16,30]
  - [30,61, 62,45]
backbone:
  [[-1, 1, Conv, [16, 3, 2]],
   [-1, 1, RepConv, [16, 3, 1]],
   [-1, 1, RepConv, [32, 3, 2, None, 1, nn.LeakyReLU(0.1)]],
   [-1, 1, SPPCSPC, [32]],
  ]
head:
  [[-1, 1, nn.Upsample, [None, 2, 'nearest']],
   [[-1, 1], 1, Concat, [1]],
   [-1, 1, MP, []],
   [-1, 1, SP, [5]],
   [[7, 3], 1, IDetect, [nc, anchors]],
  ]
)");
  models::YoloModel m = models::build_yolo(models::load_model_config(path));
  CHECK(m.graph.state_dict().count("model.1.rbr_identity.running_mean"));  // 16 → 16, stride 1
  CHECK_FALSE(m.graph.state_dict().count("model.2.rbr_identity.running_mean"));
  CHECK(fused_difference(m, 64, 96) < 1e-4);
  const auto sd = m.graph.state_dict();
  CHECK(sd.count("model.1.rbr_reparam.weight"));
  CHECK(sd.count("model.1.rbr_reparam.bias"));
  CHECK(sd.count("model.0.conv.bias"));
  CHECK_FALSE(sd.count("model.0.bn.weight"));
  CHECK_FALSE(sd.count("model.8.ia.0.implicit"));
  // The fused weights load into the deploy form built from the same config.
  models::YoloModel deploy = models::build_yolo(models::load_model_config(path), {true, 0});
  graph::fold_batch_norms(deploy.graph);
  graph::fold_implicit(deploy.graph);
  CHECK_NOTHROW(deploy.graph.load_state_dict(sd));
  std::remove(path.c_str());
}

TEST_CASE("fuse() leaves yolov7-tiny and yolov7 outputs unchanged") {
  models::YoloModel tiny = models::build_yolo(models::load_model_config(cfg_path("training/yolov7-tiny.yaml")));
  CHECK(fused_difference(tiny, 96, 64) < 1e-4);
  CHECK(tiny.graph.parameter_count() < 6228762);
  models::YoloModel v7 = models::build_yolo(models::load_model_config(cfg_path("training/yolov7.yaml"), 20));
  CHECK(fused_difference(v7, 64, 64) < 1e-4);
}

TEST_CASE("fuse() chains SPP's max-pools: 9x9 and 13x13 become 5x5 pools of the pool before, with the same maxima") {
  models::YoloModel tiny = models::build_yolo(models::load_model_config(cfg_path("training/yolov7-tiny.yaml")));
  auto pools = [&tiny] {  // node index of each same-size pool, by its kernel
    std::map<int64_t, int> found;
    for (size_t i = 0; i < tiny.graph.nodes.size(); ++i) {
      const graph::Node& n = tiny.graph.nodes[i];
      if (n.op == graph::Op::max_pool && n.get<graph::PoolAttrs>().stride == 1) found[n.get<graph::PoolAttrs>().kernel] = static_cast<int>(i);
    }
    return found;
  };
  const std::map<int64_t, int> before = pools();
  REQUIRE(before.size() == 3);
  const std::vector<int> spp_input = tiny.graph.nodes[before.at(5)].inputs;
  CHECK(tiny.graph.nodes[before.at(13)].inputs == spp_input);
  CHECK(graph::fuse(tiny.graph).pools == 2);
  const std::map<int64_t, int> after = pools();
  REQUIRE(after.size() == 1);  // all three are 5×5 now
  int five = -1, nine = -1, thirteen = -1;  // the nodes again: fuse() renumbers them
  for (size_t i = 0; i < tiny.graph.nodes.size(); ++i) {
    const graph::Node& n = tiny.graph.nodes[i];
    if (n.op != graph::Op::max_pool || n.get<graph::PoolAttrs>().stride != 1) continue;
    CHECK(n.get<graph::PoolAttrs>().padding == 2);
    (five < 0 ? five : nine < 0 ? nine : thirteen) = static_cast<int>(i);
  }
  CHECK(tiny.graph.nodes[nine].inputs == std::vector<int>{five});
  CHECK(tiny.graph.nodes[thirteen].inputs == std::vector<int>{nine});

  // The identity it rests on, exactly, on planes smaller than the windows (edges everywhere).
  Generator gen(5);
  const Tensor x = Tensor::uniform({2, 3, 7, 12}, -1, 1, gen);
  NoGradGuard no_grad;
  const Tensor p5 = max_pool2d(x, {5, 1, 2}), p9 = max_pool2d(x, {9, 1, 4}), p13 = max_pool2d(x, {13, 1, 6});
  CHECK(max_pool2d(p5, {5, 1, 2}).to_vector() == p9.to_vector());
  CHECK(max_pool2d(p9, {5, 1, 2}).to_vector() == p13.to_vector());
  CHECK(max_pool2d(p5, {5, 1, 2}).to_vector() != p5.to_vector());  // the windows did grow
}

TEST_CASE("a fused training model runs as the official deploy config (Detect, no implicit layers)") {
  models::YoloModel train = models::build_yolo(models::load_model_config(cfg_path("training/yolov7-tiny.yaml")), {false, 4});
  randomize_norms(train.graph, 3);
  train.graph.eval();
  Generator gen(9);
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0, 1, gen);
  NoGradGuard no_grad;
  Tensor expected;
  {
    OpProfile profile;  // the forward pass times each node by its op
    expected = graph::forward(train.graph, x).decoded;
    CHECK(profile.entries().at("forward conv").calls == 58);  // yolov7-tiny's conv layers
    CHECK(profile.entries().at("forward concat").calls == 14);
  }
  graph::fuse(train.graph);
  models::YoloModel deploy = models::build_yolo(models::load_model_config(cfg_path("deploy/yolov7-tiny.yaml")));
  graph::fold_batch_norms(deploy.graph);  // deploy checkpoints hold fused convs with biases
  deploy.graph.load_state_dict(train.graph.state_dict());
  deploy.graph.eval();
  CHECK(test::max_rel_diff(graph::forward(deploy.graph, x).decoded, expected) < 1e-4);
}

TEST_CASE("safetensors save/load keeps the config, names and outputs") {
  models::YoloModel m = models::build_yolo(models::load_model_config(cfg_path("training/yolov7-tiny.yaml"), 5), {false, 3});
  m.names = {"a", "b", "c", "d", "e"};
  randomize_norms(m.graph, 2);
  const std::string path = test::temp_path("tiny.safetensors");
  models::save_model(path, m);
  models::YoloModel back = models::load_model(path);
  CHECK(back.nc() == 5);
  CHECK(back.names == m.names);
  m.graph.eval();
  back.graph.eval();
  Generator gen(1);
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0, 1, gen);
  NoGradGuard no_grad;
  CHECK(test::max_rel_diff(graph::forward(back.graph, x).decoded, graph::forward(m.graph, x).decoded) == 0.0);
  // Another class count cannot change a saved graph's head...
  models::LoadOptions other;
  other.nc = 20;
  CHECK(test::error_of([&] { models::load_model(path, other); }).find("detects 5 classes; --nc 20 cannot change") != std::string::npos);
  // ...and rebuilt from a config for 20 classes, the error names the parameter and both shapes.
  other.cfg = cfg_path("training/yolov7-tiny.yaml");
  const std::string err = test::error_of([&] { models::load_model(path, other); });
  CHECK(err.find(path) != std::string::npos);
  CHECK(err.find("'model.77.im.0.implicit' has shape [1, 30, 1, 1] but the model expects [1, 75, 1, 1]") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE(".pt: a plain state dict written by torch.save") {
  const io::PtCheckpoint ckpt = io::load_pt(kSource + "/tests/data/torch/state_dict.pt");
  CHECK_FALSE(ckpt.whole_model);
  CHECK_FALSE(ckpt.config.has_value());
  CHECK(ckpt.state_dict.at("layer.weight").shape() == Shape{3, 2, 1, 1});
  CHECK(ckpt.state_dict.at("layer.weight").to_vector()[0] == doctest::Approx(1.5409961f));
  CHECK(ckpt.state_dict.at("layer.bias").dtype() == DType::f16);
  CHECK(ckpt.state_dict.at("layer.bias").to_vector()[1] == doctest::Approx(0.837890625f));
  CHECK(ckpt.state_dict.at("layer.count").dtype() == DType::i64);
  CHECK(ckpt.state_dict.at("layer.count").item() == 7.0f);
  // Views of a shared storage come back with their own layout: a transpose and an offset slice.
  CHECK(ckpt.state_dict.at("view.transposed").to_vector() ==
        std::vector<float>{0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21, 4, 10, 16, 22, 5, 11, 17, 23});
  CHECK(ckpt.state_dict.at("view.slice").to_vector() == std::vector<float>{8, 9, 10, 14, 15, 16});
  // A state dict has no config: loading it as a model needs --cfg.
  CHECK(test::error_of([&] { models::load_model(kSource + "/tests/data/torch/state_dict.pt"); }).find("pass --cfg") != std::string::npos);
}

namespace {

uint32_t le32(const std::string& b, size_t at) {
  return static_cast<uint32_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8 |
                               static_cast<uint8_t>(b[at + 2]) << 16 | static_cast<uint32_t>(static_cast<uint8_t>(b[at + 3])) << 24);
}
uint16_t le16(const std::string& b, size_t at) {
  return static_cast<uint16_t>(static_cast<uint8_t>(b[at]) | static_cast<uint8_t>(b[at + 1]) << 8);
}
void put_le32(std::string& b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) b[at + i] = static_cast<char>((v >> (8 * i)) & 0xff);
}

// Recomputes every entry's CRC-32 of an (uncompressed, small) archive edited on purpose, so that
// what a test corrupts reaches the parser behind the ZIP layer.
void rewrite_crcs(std::string& zip) {
  for (size_t at = zip.find("PK\x01\x02"); at != std::string::npos; at = zip.find("PK\x01\x02", at + 4)) {
    const size_t local = le32(zip, at + 42), size = le32(zip, at + 24);
    const size_t data = local + 30 + le16(zip, local + 26) + le16(zip, local + 28);
    const uint32_t crc = io::crc32(zip.data() + data, size);
    put_le32(zip, at + 16, crc);
    put_le32(zip, local + 14, crc);
  }
}

// Where the data of the entry whose name ends with `suffix` starts (npos when there is none).
size_t entry_data(const std::string& zip, const std::string& suffix) {
  for (size_t at = zip.find("PK\x01\x02"); at != std::string::npos; at = zip.find("PK\x01\x02", at + 4)) {
    const std::string name = zip.substr(at + 46, le16(zip, at + 28));
    if (name.size() < suffix.size() || name.compare(name.size() - suffix.size(), suffix.size(), suffix) != 0) continue;
    const size_t local = le32(zip, at + 42);
    return local + 30 + le16(zip, local + 26) + le16(zip, local + 28);
  }
  return std::string::npos;
}

}  // namespace

TEST_CASE(".pt: truncated archives and unknown pickle content fail clearly") {
  const std::string good = [] {
    const auto bytes = io::read_file(kSource + "/tests/data/torch/state_dict.pt");
    return std::string(bytes.begin(), bytes.end());
  }();
  const std::string path = test::temp_path("bad.pt");
  test::write_text(path, good.substr(0, good.size() / 2));
  CHECK(test::error_of([&] { io::load_pt(path); }).find("truncated") != std::string::npos);
  test::write_text(path, "not a zip file at all, just text");
  CHECK(test::error_of([&] { io::load_pt(path); }).find("not a ZIP archive") != std::string::npos);
  // Corrupt the pickle: replace its first opcode after PROTO with an unknown one (0xff).
  std::string corrupt = good;
  const size_t pickle = corrupt.find("\x80\x02");
  REQUIRE(pickle != std::string::npos);
  corrupt[pickle + 2] = '\xff';
  rewrite_crcs(corrupt);
  test::write_text(path, corrupt);
  const std::string err = test::error_of([&] { io::load_pt(path); });
  CHECK(err.find("unsupported pickle opcode 0xff") != std::string::npos);
  CHECK(err.find("data.pkl") != std::string::npos);
  // A pickle that stops early.
  corrupt = good;
  corrupt[pickle + 2] = '.';
  rewrite_crcs(corrupt);
  test::write_text(path, corrupt);
  CHECK(test::error_of([&] { io::load_pt(path); }).find("empty stack") != std::string::npos);
  // Bits flipped inside a tensor's data: the entry's CRC-32 no longer matches.
  corrupt = good;
  const size_t data = entry_data(corrupt, "data/0");
  REQUIRE(data != std::string::npos);
  corrupt[data + 1] ^= 0x10;  // one bit of the first storage's first float
  test::write_text(path, corrupt);
  CHECK(test::error_of([&] { io::load_pt(path); }).find("fails its CRC-32 check") != std::string::npos);
  std::remove(path.c_str());
}

namespace {
std::string pickle_int(int64_t v) {  // BININT (4 bytes, signed)
  std::string s = "J";
  for (int i = 0; i < 4; ++i) s += static_cast<char>((static_cast<uint64_t>(v) >> (8 * i)) & 0xff);
  return s;
}
std::string pickle_str(const std::string& v) {  // BINUNICODE
  std::string s = "X";
  for (int i = 0; i < 4; ++i) s += static_cast<char>((v.size() >> (8 * i)) & 0xff);
  return s + v;
}
// torch._utils._rebuild_tensor_v2(storage of 4 floats, offset, size, stride) as torch.save pickles it.
std::string rebuild_tensor_pickle(int64_t offset, const std::vector<int64_t>& size, const std::vector<int64_t>& stride) {
  std::string p = "\x80\x02" "ctorch._utils\n_rebuild_tensor_v2\n(";  // (a hex escape would swallow the 'c')
  p += "(" + pickle_str("storage") + "ctorch\nFloatStorage\n" + pickle_str("0") + pickle_str("cpu") + pickle_int(4) + "tQ";
  p += pickle_int(offset) + "(";
  for (int64_t s : size) p += pickle_int(s);
  p += "t(";
  for (int64_t s : stride) p += pickle_int(s);
  return p + "ttR.";
}
io::Value unpickle(const std::string& bytes) {
  io::Unpickler u(bytes.data(), bytes.size(), "crafted.pkl",
                  [](const std::string&, const std::string&, int64_t numel) { return Tensor::ones({numel}); });
  return u.load();
}
}  // namespace

TEST_CASE("hostile .pt content: nesting, expansion, strides and offsets end in clear errors") {
  // The crafted pickle itself is good: a [2] view with stride 2 of a 4-float storage.
  CHECK(unpickle(rebuild_tensor_pickle(0, {2}, {2})).tensor.shape() == Shape{2});
  // A negative stride (once a heap overflow in the strided copy), a view past the storage, and sizes
  // whose products overflow int64.
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(0, {2}, {-1})); }).find("crafted.pkl: pickle byte") != std::string::npos);
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(0, {2}, {-1})); }).find("negative size or stride") != std::string::npos);
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(3, {2}, {1})); }).find("reaches past the end of its storage") != std::string::npos);
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(5, {1}, {1})); }).find("offset 5 lies outside") != std::string::npos);
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(0, {2, 2}, {2000000000, 2000000000})); })
            .find("reaches past the end of its storage") != std::string::npos);
  CHECK(test::error_of([] { unpickle(rebuild_tensor_pickle(0, {2000000000, 2000000000, 2000000000}, {0, 0, 0})); })
            .find("more than 2^48 elements") != std::string::npos);
  // Lists nested 100 000 deep (once a stack overflow, or minutes of copying).
  const std::string deep = "\x80\x02" + std::string(100000, ']') + std::string(99999, 'a') + ".";
  CHECK(test::error_of([&] { unpickle(deep); }).find("values nest deeper than 200 levels") != std::string::npos);
  // A value doubled through the memo 40 times: 2^40 values.
  std::string laughs("\x80\x02]q\0", 5);  // (literals with NULs need their lengths)
  for (int i = 0; i < 40; ++i) laughs += std::string("h\0h\0\x86q\0", 7);
  const std::string expansion = test::error_of([&] { unpickle(laughs + "."); });
  CHECK_MESSAGE(expansion.find("expands to more than") != std::string::npos, expansion);
}

TEST_CASE("hostile ZIP: offsets that would wrap around 64 bits are refused") {
  // A ZIP64 end record whose central directory offset is 2^64 − 16 (16 + 32 wrapped to 16 once).
  std::string zip(56, '\0');
  put_le32(zip, 0, 0x06064b50u);                           // ZIP64 end of central directory record
  for (int i = 0; i < 8; ++i) zip[40 + i] = i == 0 ? 32 : 0;  // size of the directory: 32
  for (int i = 0; i < 8; ++i) zip[48 + i] = i == 0 ? static_cast<char>(0xf0) : static_cast<char>(0xff);  // offset 2^64 − 16
  std::string locator(20, '\0');
  put_le32(locator, 0, 0x07064b50u);                       // ZIP64 locator → the record at 0
  std::string eocd(22, '\0');
  put_le32(eocd, 0, 0x06054b50u);
  const std::string path = test::temp_path("wrap.zip");
  test::write_text(path, zip + locator + eocd);
  CHECK(test::error_of([&] { io::ZipArchive archive(path); }).find("the central directory lies past the end of the file") !=
        std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("parity with the reference implementation on the fixture checkpoint" * doctest::test_suite("requires_shared")) {
  const std::string dir = fixture_dir();
  if (dir.empty()) {
    return test::skip("../shared is absent; the fixture checkpoint and reference outputs cannot be read");
  }
  models::YoloModel m = models::load_model(dir + "yolov7-tiny-coco128.pt");
  CHECK(m.nc() == 80);
  CHECK(m.names.size() == 80);
  CHECK(m.graph.parameter_count() == 6228762);
  m.graph.eval();
  const Tensor x = io::load_npy(dir + "input_320.npy");
  const char* raw_files[] = {"raw_p3_320.npy", "raw_p4_320.npy", "raw_p5_320.npy"};
  for (bool fused : {false, true}) {
    CAPTURE(fused);
    if (fused) graph::fuse(m.graph);
    NoGradGuard no_grad;
    const graph::DetectOutput out = graph::forward(m.graph, x);
    for (int l = 0; l < 3; ++l) {
      const Tensor ref = io::load_npy(dir + raw_files[l]);
      CHECK(out.raw[l].shape() == ref.shape());
      CHECK(test::max_rel_diff(out.raw[l], ref) <= 1e-4);
    }
    const Tensor decoded = io::load_npy(dir + "decoded_320.npy");
    CHECK(out.decoded.shape() == decoded.shape());
    CHECK(test::max_rel_diff(out.decoded, decoded) <= 1e-4);
  }
  // The same weights as a plain state dict with --cfg, and with a wrong class count.
  models::LoadOptions with_cfg;
  with_cfg.cfg = cfg_path("training/yolov7-tiny.yaml");
  with_cfg.nc = 20;
  const std::string err = test::error_of([&] { models::load_model(dir + "yolov7-tiny-coco128.pt", with_cfg); });
  CHECK(err.find("'model.77.im.0.implicit' has shape [1, 255, 1, 1] but the model expects [1, 75, 1, 1]") != std::string::npos);
}

TEST_CASE("training mode returns the raw maps and backpropagates to every parameter") {
  models::YoloModel m = models::build_yolo(models::load_model_config(cfg_path("training/yolov7-tiny.yaml"), 3));
  m.graph.train();
  Generator gen(10);
  const graph::DetectOutput out = graph::forward(m.graph, Tensor::uniform({2, 3, 64, 64}, 0, 1, gen));
  CHECK_FALSE(out.decoded.defined());
  REQUIRE(out.raw.size() == 3);
  CHECK(out.raw[0].shape() == Shape{2, 3, 8, 8, 8});
  Tensor loss = sum(out.raw[0]) + sum(out.raw[1] * out.raw[1]) + mean(out.raw[2]);
  loss.backward();
  int64_t without_grad = 0;
  for (auto& [name, p] : m.graph.named_parameters()) without_grad += !p.grad().defined();
  CHECK(without_grad == 0);
  CHECK(m.graph.state_dict().at("model.0.bn.num_batches_tracked").at({}) == 1.0);
}
