// The model graph: channel counts from one source, validate(), the coupled channel groups pruning
// reads (checked against groups derived by hand from the configs), and Bottleneck / YOLOv3.
#include "test_main.hpp"

#include <fstream>
#include <set>

#include "pdyolo/graph/channels.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/onnx_export.hpp"
#include "pdyolo/models/weights.hpp"
#include "test_util.hpp"

using namespace pdyolo;

namespace {

const std::string kSource = PDYOLO_SOURCE_DIR;

models::YoloModel build(const std::string& cfg_file, std::optional<int64_t> nc = std::nullopt) {
  return models::build_yolo(models::load_model_config(cfg_file, nc));
}

int node_named(const graph::Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return static_cast<int>(i);
  FAIL("no node " << name);
  return -1;
}

// The group holding the space node `name` creates.
const graph::ChannelGroup& group_of(const graph::ChannelGroups& groups, const graph::Graph& g, const std::string& name) {
  const int node = node_named(g, name);
  for (size_t s = 0; s < groups.spaces.size(); ++s)
    if (groups.spaces[s].node == node) return groups.groups[groups.group_of_space[s]];
  FAIL("no space created by " << name);
  return groups.groups[0];
}

// The names of the nodes creating a group's spaces.
std::vector<std::string> space_names(const graph::ChannelGroups& groups, const graph::Graph& g, const graph::ChannelGroup& group) {
  std::vector<std::string> names;
  for (int s : group.spaces) names.push_back(g.nodes[groups.spaces[s].node].name);
  return names;
}

// The uses of a group on one tensor axis, in order.
std::vector<const graph::ChannelUse*> uses_on(const graph::ChannelGroup& group, const graph::Graph& g, const std::string& node,
                                              const std::string& tensor, int axis) {
  std::vector<const graph::ChannelUse*> found;
  for (const graph::ChannelUse& u : group.uses)
    if (g.nodes[u.node].name == node && u.tensor == tensor && u.axis == axis) found.push_back(&u);
  return found;
}

bool index_is_offset(const graph::ChannelUse& u, int64_t offset) {
  for (size_t k = 0; k < u.index.size(); ++k)
    if (u.index[k] != offset + static_cast<int64_t>(k)) return false;
  return true;
}

int count_op(const graph::Graph& g, graph::Op op) {
  int n = 0;
  for (const graph::Node& node : g.nodes) n += node.op == op;
  return n;
}


}  // namespace

TEST_CASE("yolov7-tiny: one group per conv, fixed image and detection maps, concat offsets as the config lays them out") {
  const models::YoloModel m = build(kSource + "/cfg/training/yolov7-tiny.yaml");
  const graph::Graph& g = m.graph;
  CHECK_NOTHROW(graph::validate(g));
  const graph::ChannelGroups groups = graph::channel_groups(g);
  MESSAGE("yolov7-tiny channel groups:\n" << groups.describe(g));
  // No add in yolov7-tiny: 55 Conv rows, 3 detection convs and the image, each its own space and group.
  CHECK(count_op(g, graph::Op::conv) == 58);
  CHECK(groups.groups.size() == 59);
  int fixed = 0;
  for (const graph::ChannelGroup& group : groups.groups) {
    CHECK(group.spaces.size() == 1);
    fixed += !group.prunable;
  }
  CHECK(fixed == 4);
  CHECK_FALSE(group_of(groups, g, "input").prunable);
  CHECK_FALSE(group_of(groups, g, "model.77.m.2").prunable);
  CHECK(group_of(groups, g, "model.77.m.2").channels == 255);
  // Row 6 concatenates rows [5, 4, 3, 2] (32 channels each); row 7's conv reads them at 0, 32, 64, 96.
  const std::pair<const char*, int64_t> concat_offsets[] = {{"model.5.conv", 0}, {"model.4.conv", 32}, {"model.3.conv", 64}, {"model.2.conv", 96}};
  for (const auto& concat_offset : concat_offsets) {
    const char* name = concat_offset.first;  // (not a structured binding: CAPTURE's lambda reads it)
    const int64_t offset = concat_offset.second;
    CAPTURE(name);
    const graph::ChannelGroup& group = group_of(groups, g, name);
    CHECK(group.channels == 32);
    CHECK(group.prunable);
    const auto uses = uses_on(group, g, "model.7.conv", "weight", 1);
    REQUIRE(uses.size() == 1);
    CHECK(index_is_offset(*uses[0], offset));
    // Its own conv's weight and the batch norm after it are indexed too: 1 + 4 + the reader.
    CHECK(uses_on(group, g, name, "weight", 0).size() == 1);
  }
  // A detection head's conv consumes prunable channels (its input axis) but produces fixed ones.
  const graph::ChannelGroup& p3 = group_of(groups, g, "model.74.conv");
  CHECK(p3.prunable);
  CHECK(uses_on(p3, g, "model.77.m.0", "weight", 1).size() == 1);
}

TEST_CASE("yolov7: RepConv couples its branches, SPPCSPC's concat reads cv4's channels four times") {
  const models::YoloModel m = build(kSource + "/cfg/training/yolov7.yaml");
  const graph::Graph& g = m.graph;
  CHECK_NOTHROW(graph::validate(g));
  const graph::ChannelGroups groups = graph::channel_groups(g);
  MESSAGE("yolov7 channel groups:\n" << groups.describe(g));
  // Every conv and the image are a space; the three RepConvs (102–104, no identity branch: their
  // inputs are narrower) each join two spaces.
  CHECK(groups.spaces.size() == static_cast<size_t>(count_op(g, graph::Op::conv) + 1));
  CHECK(groups.groups.size() == groups.spaces.size() - 3);
  const std::pair<int, int64_t> repconvs[] = {{102, 256}, {103, 512}, {104, 1024}};
  for (const auto& [layer, width] : repconvs) {
    const std::string p = "model." + std::to_string(layer);
    const graph::ChannelGroup& group = group_of(groups, g, p + ".rbr_dense.0");
    CHECK(space_names(groups, g, group) == std::vector<std::string>{p + ".rbr_dense.0", p + ".rbr_1x1.0"});
    CHECK(group.channels == width);
    CHECK(group.prunable);  // the detection conv reads them; only its outputs are fixed
    // Both convs, both batch norms, the ImplicitA and the detection conv's input axis.
    CHECK(group.uses.size() == 2 + 8 + 2);
    for (const graph::ChannelUse& u : group.uses) CHECK(index_is_offset(u, 0));
  }
  // SPPCSPC (row 51): cat1 = [cv4, pool5(cv4), pool9(cv4), pool13(cv4)], 512 channels each.
  const graph::ChannelGroup& cv4 = group_of(groups, g, "model.51.cv4.conv");
  const auto reads = uses_on(cv4, g, "model.51.cv5.conv", "weight", 1);
  REQUIRE(reads.size() == 4);
  for (int r = 0; r < 4; ++r) CHECK(index_is_offset(*reads[r], 512 * r));
  CHECK(graph::channel_groups(g).describe(g) == groups.describe(g));  // deterministic
}

TEST_CASE("Bottleneck stacks: residual adds couple their spaces, shortcut=False and width changes do not") {
  const std::string path = test::temp_path("residual.yaml");
  test::write_text(path, R"(nc: 2
anchors:
  - [10,13, 16,30]
backbone:
  [[-1, 1, Conv, [16, 3, 2]],
   [-1, 1, Bottleneck, [16]],
   [-1, 1, Conv, [32, [1, 1]]],
   [-1, 3, Bottleneck, [32]],
   [-1, 1, Bottleneck, [32, False]],
   [-1, 1, Bottleneck, [48]],
   [-1, 1, RepConv, [48, 3, 1]],
   [[-1, 3], 1, Concat, [1]],
   [[-1], 1, Detect, [nc, anchors]],
  ]
head: []
)");
  models::YoloModel m = build(path);
  std::remove(path.c_str());
  const graph::Graph& g = m.graph;
  CHECK_NOTHROW(graph::validate(g));
  const auto sd = g.state_dict();
  CHECK(sd.count("model.1.cv1.conv.weight"));    // number 1: no index
  CHECK(sd.count("model.3.2.cv2.bn.running_var"));  // number 3: model.3.0 … model.3.2
  CHECK(sd.at("model.2.conv.weight").shape() == Shape{32, 16, 1, 1});  // kernel given as [1, 1]
  const graph::ChannelGroups groups = graph::channel_groups(g);
  MESSAGE("residual config channel groups:\n" << groups.describe(g));
  // Row 0 + row 1's cv2 (16 → 16 with shortcut); row 2 + the three blocks of row 3; row 4 has no
  // shortcut; row 5 widens 32 → 48 (no add); row 6's RepConv (48 → 48, stride 1) adds its identity
  // branch, so its two convs join row 5's cv2.
  CHECK(space_names(groups, g, group_of(groups, g, "model.0.conv")) == std::vector<std::string>{"model.0.conv", "model.1.cv2.conv"});
  CHECK(space_names(groups, g, group_of(groups, g, "model.2.conv")) ==
        std::vector<std::string>{"model.2.conv", "model.3.0.cv2.conv", "model.3.1.cv2.conv", "model.3.2.cv2.conv"});
  CHECK(group_of(groups, g, "model.4.cv2.conv").spaces.size() == 1);
  CHECK(space_names(groups, g, group_of(groups, g, "model.5.cv2.conv")) ==
        std::vector<std::string>{"model.5.cv2.conv", "model.6.rbr_dense.0", "model.6.rbr_1x1.0"});
  const graph::ChannelGroup& residual = group_of(groups, g, "model.2.conv");
  CHECK(residual.channels == 32);
  // The residual stream leaves row 3 into row 4's cv1 and into the concat at offset 48.
  CHECK(uses_on(residual, g, "model.4.cv1.conv", "weight", 1).size() == 1);
  const auto head_reads = uses_on(residual, g, "model.8.m.0", "weight", 1);
  REQUIRE(head_reads.size() == 1);
  CHECK(index_is_offset(*head_reads[0], 48));
  // Bottlenecks run and fuse like every other block.
  m.graph.eval();
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f);
  const Tensor before = graph::forward(m.graph, x).decoded;
  graph::fuse(m.graph);
  CHECK_NOTHROW(graph::validate(m.graph));
  CHECK(test::max_rel_diff(graph::forward(m.graph, x).decoded, before) < 1e-5);
}

TEST_CASE("validate() names the node and both numbers of a channel mismatch") {
  const std::string cfg = kSource + "/cfg/training/yolov7-tiny.yaml";
  {
    models::YoloModel m = build(cfg);
    graph::Node& conv = m.graph.nodes[node_named(m.graph, "model.7.conv")];
    conv.tensor("weight") = Tensor::zeros({64, 96, 1, 1});
    const std::string error = test::error_of([&] { graph::validate(m.graph); });
    CHECK(error.find("model.7.conv") != std::string::npos);
    CHECK(error.find("reads 96 input channels") != std::string::npos);
    CHECK(error.find("'model.6' has 128") != std::string::npos);
  }
  {
    models::YoloModel m = build(cfg);
    m.graph.nodes[node_named(m.graph, "model.3.bn")].tensor("running_var") = Tensor::ones({31});
    const std::string error = test::error_of([&] { graph::validate(m.graph); });
    CHECK(error.find("model.3.bn") != std::string::npos);
    CHECK(error.find("'running_var' [31] should have 32 channels") != std::string::npos);
  }
  {
    models::YoloModel m = build(cfg);
    m.graph.nodes[node_named(m.graph, "model.0.conv")].get<graph::ConvAttrs>().kernel = 5;
    CHECK(test::error_of([&] { graph::validate(m.graph); }).find("model.0.conv' (conv): kernel 5 but the weight is 3x3") != std::string::npos);
  }
  {
    models::YoloModel m = build(cfg, 3);
    m.graph.nodes[node_named(m.graph, "model.77.m.1")].tensor("weight") = Tensor::zeros({25, 256, 1, 1});
    m.graph.nodes[node_named(m.graph, "model.77.m.1")].tensor("bias") = Tensor::zeros({25});
    m.graph.nodes[node_named(m.graph, "model.77.im.1")].tensor("implicit") = Tensor::zeros({1, 25, 1, 1});
    CHECK(test::error_of([&] { graph::validate(m.graph); }).find("input 'model.77.im.1' has 25 channels, na·(nc+5) is 24") !=
          std::string::npos);
  }
  {
    // 40 concats each reading the one before twice: 3·2^40 channels, and 2^40 paths for a walk that
    // recounts through concats. validate() counts each node once and stops at kMaxChannels.
    graph::Graph g;
    graph::Node input;
    input.op = graph::Op::input;
    input.name = "input";
    input.attrs = graph::InputAttrs{3};
    g.add(input);
    for (int i = 1; i <= 40; ++i) {
      graph::Node cat;
      cat.op = graph::Op::concat;
      cat.name = "cat" + std::to_string(i);
      cat.inputs = {i - 1, i - 1};
      g.add(cat);
    }
    CHECK(test::error_of([&] { graph::validate(g); }).find("node 'cat15' (concat): has 98304 channels; a node has between 1 and 65536") !=
          std::string::npos);
  }
}

TEST_CASE("YOLOv3 (the reference's cfg/baseline/yolov3.yaml): sizes exactly the reference's, Darknet's residual groups" *
          doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) return test::skip("../shared is absent; yolov3.yaml lives in ../shared/fixtures/cfg/baseline");
  const std::string cfg = shared + "/fixtures/cfg/baseline/yolov3.yaml";
  // Counted by the reference's Model (tests/data/reference_sizes.py): parameters, 2 × conv MACs at 640².
  CHECK(build(cfg, 80).graph.parameter_count() == 61949149);
  CHECK(build(cfg, 80).graph.conv_flops(640) / 1e9 == doctest::Approx(155.8913).epsilon(1e-5));
  CHECK(build(cfg, 20).graph.parameter_count() == 61626049);
  CHECK(build(cfg, 20).graph.conv_flops(640) / 1e9 == doctest::Approx(154.8591).epsilon(1e-5));
  const models::YoloModel m = build(cfg);
  const graph::Graph& g = m.graph;
  CHECK_NOTHROW(graph::validate(g));
  const graph::ChannelGroups groups = graph::channel_groups(g);
  MESSAGE("yolov3 channel groups:\n" << groups.describe(g));
  // Darknet-53: each downsampling conv and the 1, 2, 8, 8, 4 residual blocks after it share channels;
  // the head's Bottlenecks have shortcut=False.
  struct Stage {
    const char* conv;
    int blocks;
    int64_t channels;
  };
  const Stage stages[] = {{"model.1.conv", 1, 64}, {"model.3.conv", 2, 128}, {"model.5.conv", 8, 256},
                          {"model.7.conv", 8, 512}, {"model.9.conv", 4, 1024}};
  size_t coupled = 0;
  for (const graph::ChannelGroup& group : groups.groups) coupled += group.spaces.size() > 1;
  CHECK(coupled == 5);
  for (const Stage& s : stages) {
    CAPTURE(s.conv);
    const graph::ChannelGroup& group = group_of(groups, g, s.conv);
    CHECK(group.spaces.size() == static_cast<size_t>(s.blocks + 1));
    CHECK(group.channels == s.channels);
    CHECK(group.prunable);
  }
  // Row 18 concatenates [row 17 (256 channels), row 8]: row 19's cv1 reads the P4 stream at 256.
  const auto p4_reads = uses_on(group_of(groups, g, "model.7.conv"), g, "model.19.cv1.conv", "weight", 1);
  REQUIRE(p4_reads.size() == 1);
  CHECK(index_is_offset(*p4_reads[0], 256));
  CHECK(groups.groups.size() == groups.spaces.size() - (1 + 2 + 8 + 8 + 4));
}

namespace {

// Zeroes batch norm γ and β of the group channels not in `keep` (through LeakyReLU they then output
// exactly 0), so removing them must leave the model's outputs unchanged.
void silence_channels(graph::Graph& g, const graph::ChannelGroup& group, const std::vector<int64_t>& keep) {
  for (const graph::ChannelUse& u : group.uses) {
    graph::Node& n = g.nodes[u.node];
    if (n.op != graph::Op::batch_norm || (u.tensor != "weight" && u.tensor != "bias")) continue;
    float* v = n.tensor(u.tensor).data<float>();
    for (int64_t k = 0; k < static_cast<int64_t>(u.index.size()); ++k)
      if (std::find(keep.begin(), keep.end(), k) == keep.end()) v[u.index[k]] = 0.0f;
  }
}

std::vector<int64_t> every_but_thirds(int64_t n) {
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < n; ++k)
    if (k % 3) keep.push_back(k);
  return keep;
}

Tensor decoded(graph::Graph& g, const Tensor& x) {
  NoGradGuard no_grad;
  g.eval();
  return graph::forward(g, x).decoded;
}

}  // namespace

TEST_CASE("surgery: removing channels of a group leaves a consistent graph with the same outputs as silencing them") {
  models::YoloModel m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  const Tensor x = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f);
  const int64_t params = m.graph.parameter_count();
  // model.2 (read by row 7 through the concat at offset 96) and model.7 (read by rows 8 and 9).
  for (const char* name : {"model.2.conv", "model.7.conv"}) {
    const graph::ChannelGroups groups = graph::channel_groups(m.graph);
    const graph::ChannelGroup& group = group_of(groups, m.graph, name);
    const std::vector<int64_t> keep = every_but_thirds(group.channels);
    silence_channels(m.graph, group, keep);
    const Tensor before = decoded(m.graph, x);
    graph::keep_channels(m.graph, group, keep);
    CHECK_NOTHROW(graph::validate(m.graph));
    CHECK(test::max_rel_diff(decoded(m.graph, x), before) < 1e-5);
  }
  CHECK(m.graph.channels(node_named(m.graph, "model.2.conv")) == 21);  // 32 − ⌈32/3⌉
  CHECK(m.graph.nodes[node_named(m.graph, "model.7.conv")].tensor("weight").shape() == Shape{42, 117, 1, 1});
  CHECK(m.graph.parameter_count() < params);
  // Fixed channels and bad lists are refused.
  const graph::ChannelGroups groups = graph::channel_groups(m.graph);
  CHECK(test::error_of([&] { graph::keep_channels(m.graph, group_of(groups, m.graph, "input"), {0}); }).find("fixed meaning") !=
        std::string::npos);
  CHECK(test::error_of([&] { graph::keep_channels(m.graph, group_of(groups, m.graph, "model.3.conv"), {2, 1}); }).find("out of order") !=
        std::string::npos);
}

TEST_CASE("a model no config can express saves, reloads, clones and runs with identical outputs") {
  models::YoloModel m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  m.names = {"x", "y", "z"};
  for (const char* name : {"model.2.conv", "model.14.conv", "model.74.conv"}) {
    const graph::ChannelGroups groups = graph::channel_groups(m.graph);
    const graph::ChannelGroup& group = group_of(groups, m.graph, name);
    graph::keep_channels(m.graph, group, every_but_thirds(group.channels));
  }
  const Tensor x = Tensor::uniform({2, 3, 64, 96}, 0.0f, 1.0f);
  const Tensor expected = decoded(m.graph, x);
  const std::string path = test::temp_path("pruned.safetensors");
  models::save_model(path, m);
  models::YoloModel back = models::load_model(path);  // no config needed: the graph is in the file
  CHECK(back.names == m.names);
  CHECK(back.nc() == 3);
  CHECK(back.graph.channels(node_named(back.graph, "model.74.conv")) == 85);
  CHECK(back.graph.parameter_count() == m.graph.parameter_count());
  CHECK(test::max_rel_diff(decoded(back.graph, x), expected) == 0.0);
  // The config it came from no longer describes it: rebuilding from it names the mismatch.
  models::LoadOptions with_cfg;
  with_cfg.cfg = kSource + "/cfg/training/yolov7-tiny.yaml";
  with_cfg.nc = 3;
  const std::string mismatch = test::error_of([&] { models::load_model(path, with_cfg); });
  CHECK(mismatch.find(path + ": 'model.") != std::string::npos);
  CHECK(mismatch.find("but the model expects") != std::string::npos);
  // A clone is a deep copy: same outputs, and changing it leaves the original alone.
  graph::Graph copy = back.graph.clone();
  CHECK(test::max_rel_diff(decoded(copy, x), expected) == 0.0);
  copy.nodes[node_named(copy, "model.0.conv")].tensor("weight").data<float>()[0] += 1.0f;
  CHECK(test::max_rel_diff(decoded(back.graph, x), expected) == 0.0);
  CHECK(copy.nodes[node_named(copy, "model.0.conv")].tensor("weight").requires_grad());
  // Fused, it saves and reloads too (RepConv-free tiny: conv+bn and implicit folds).
  graph::fuse(back.graph);
  const Tensor fused = decoded(back.graph, x);
  CHECK(test::max_rel_diff(fused, expected) < 1e-4);
  models::save_model(path, back);
  models::YoloModel fused_back = models::load_model(path);
  CHECK(test::max_rel_diff(decoded(fused_back.graph, x), fused) == 0.0);
  std::remove(path.c_str());
}

TEST_CASE("a model file whose graph disagrees with its tensors is refused with the node and field named") {
  models::YoloModel m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  const std::string path = test::temp_path("bad_graph.safetensors");
  auto save_with = [&](const std::function<void(io::Value&)>& edit) {
    io::Value graph_value = graph::graph_to_value(m.graph);
    edit(graph_value);
    auto metadata = models::model_metadata(m);
    metadata["pdyolo.graph"] = io::to_json(graph_value);
    io::save_safetensors(path, m.graph.state_dict(), metadata);
    return test::error_of([&] { models::load_model(path); });
  };
  auto node = [](io::Value& root, size_t i) -> io::Value& { return root.find("nodes") ? const_cast<io::Value&>(*root.find("nodes")).items[i] : root; };
  const size_t conv2 = static_cast<size_t>(node_named(m.graph, "model.2.conv"));
  CHECK(save_with([&](io::Value& g) { node(g, conv2).set("channels", io::Value::make_int(31)); })
            .find("node " + std::to_string(conv2) + " ('model.2.conv') says 31 channels but its tensors give 32") != std::string::npos);
  CHECK(save_with([&](io::Value& g) { node(g, conv2).set("op", io::Value::make_string("deconv")); })
            .find("('model.2.conv'): field 'op' 'deconv' is not an op pdyolo knows") != std::string::npos);
  CHECK(save_with([&](io::Value& g) { node(g, conv2).set("inputs", io::Value::make_list({io::Value::make_int(99)})); })
            .find("field 'inputs' must hold indices of earlier nodes") != std::string::npos);
  CHECK(save_with([&](io::Value& g) { node(g, conv2).set("tensors", io::Value::make_list()); })
            .find("tensor 'model.2.conv.weight' belongs to no node") != std::string::npos);
  CHECK(save_with([&](io::Value& g) {
          io::Value& attrs = const_cast<io::Value&>(*node(g, conv2).find("attrs"));
          attrs.set("kernel", io::Value::make_int(3));
        }).find("'model.2.conv' (conv): kernel 3 but the weight is 1x1") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("the op table: one row per op, in enum order, with unique names that the model file reads back") {
  std::set<std::string> names;
  for (graph::Op op : graph::kAllOps) {
    const graph::OpDesc& row = graph::describe(op);
    CHECK(row.op == op);
    CHECK(names.insert(row.name).second);
    CHECK((row.max_inputs == graph::kUnboundedInputs || row.max_inputs >= row.min_inputs));
  }
  // Every attribute struct's fields are checked against their declared ranges.
  models::YoloModel m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  m.graph.nodes[node_named(m.graph, "model.0.conv")].get<graph::ConvAttrs>().stride = 0;
  CHECK(test::error_of([&] { graph::validate(m.graph); }).find("'model.0.conv' (conv): attribute 'stride' is 0; it must lie in [1, 1048576]") !=
        std::string::npos);
  m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  m.graph.nodes[node_named(m.graph, "model.0.conv")].attrs = graph::PoolAttrs{};
  CHECK(test::error_of([&] { graph::validate(m.graph); }).find("'model.0.conv' (conv): has no conv attributes") != std::string::npos);
  m = build(kSource + "/cfg/training/yolov7-tiny.yaml", 3);
  m.graph.nodes[node_named(m.graph, "model.0.act")].inputs = {0, 0};
  CHECK(test::error_of([&] { graph::validate(m.graph); }).find("'model.0.act' (activation): reads 2 inputs; it takes 1") != std::string::npos);
}

TEST_CASE("ReOrg (YOLOv7-P6's space-to-depth): channels, shapes, pruning through its 4x interleave, files and both executors") {
  models::YoloModel m = build(kSource + "/tests/data/cfg/reorg-tiny.yaml");
  graph::Graph& g = m.graph;
  CHECK_NOTHROW(graph::validate(g));
  const int image_reorg = g.layer_output[0], inner_reorg = g.layer_output[3];
  CHECK(g.nodes[image_reorg].op == graph::Op::reorg);
  CHECK(g.channels(image_reorg) == 12);
  CHECK(g.channels(inner_reorg) == 64);
  const std::vector<Shape> shapes = g.infer_shapes(64, 96);
  CHECK(shapes[image_reorg] == Shape{1, 12, 32, 48});
  CHECK(shapes[inner_reorg] == Shape{1, 64, 16, 24});
  CHECK(g.node_flops(static_cast<size_t>(inner_reorg), shapes) == 0.0);
  // The image's reorg is fixed with the image; model.2's 16 channels are read four times by model.4.
  const graph::ChannelGroups groups = graph::channel_groups(g);
  CHECK_FALSE(group_of(groups, g, "input").prunable);
  const graph::ChannelGroup& group = group_of(groups, g, "model.2.conv");
  CHECK(group.prunable);
  CHECK(group.channels == 16);
  const std::vector<const graph::ChannelUse*> reads = uses_on(group, g, "model.4.conv", "weight", 1);
  REQUIRE(reads.size() == 4);
  for (int64_t phase = 0; phase < 4; ++phase) CHECK(index_is_offset(*reads[phase], 16 * phase));
  // Removing a third of them gives what silencing them gave, and the conv reading the reorg narrows 4×.
  const Tensor x = Tensor::uniform({2, 3, 64, 96}, 0.0f, 1.0f);
  const std::vector<int64_t> keep = every_but_thirds(group.channels);
  silence_channels(g, group, keep);
  const Tensor before = decoded(g, x);
  graph::keep_channels(g, group, keep);
  CHECK_NOTHROW(graph::validate(g));
  CHECK(g.channels(inner_reorg) == 4 * 10);
  CHECK(g.nodes[node_named(g, "model.4.conv")].tensor("weight").shape() == Shape{32, 40, 1, 1});
  const Tensor pruned = decoded(g, x);
  CHECK(test::max_rel_diff(pruned, before) < 1e-5);
  // The file keeps the op (its name and no attributes) and the reloaded model gives the same outputs.
  const std::string path = test::temp_path("reorg.safetensors");
  models::save_model(path, m);
  models::YoloModel back = models::load_model(path);
  std::remove(path.c_str());
  CHECK(back.graph.nodes[static_cast<size_t>(inner_reorg)].op == graph::Op::reorg);
  CHECK(test::max_rel_diff(decoded(back.graph, x), pruned) == 0.0);
  // Fused, the planned executor runs it as autograd mode does.
  graph::fuse(back.graph);
  const Tensor fused = decoded(back.graph, x);
  CHECK(test::max_rel_diff(fused, pruned) < 1e-4);
  graph::Executor executor(back.graph);
  CHECK(test::max_rel_diff(executor.run(x).decoded, fused) < 1e-4);
  // An odd size cannot be split into 2×2 phases.
  CHECK(test::error_of([&] { executor.run(Tensor::zeros({1, 3, 64, 62})); }).find("even") != std::string::npos);
}

TEST_CASE("ONNX export: every op has a form, the model's bytes start as a ModelProto, bad sizes and opsets are refused by name") {
  models::YoloModel m = build(kSource + "/tests/data/cfg/reorg-tiny.yaml");
  graph::fuse(m.graph);
  m.graph.eval();
  graph::OnnxExportOptions o;
  o.height = o.width = 64;
  o.class_names = {"it's"};  // the names metadata is a Python literal: the quote escaped
  for (graph::Op op : graph::kAllOps) {
    const bool has_form = graph::describe(op).onnx != nullptr;
    CHECK(has_form);
  }
  const std::string bytes = graph::export_onnx(m.graph, o);
  REQUIRE(bytes.size() > 1000);
  CHECK(static_cast<uint8_t>(bytes[0]) == 0x08);  // ModelProto field 1, ir_version
  CHECK(bytes[1] == 7);
  CHECK(bytes.find("Slice") != std::string::npos);  // the ReOrg's phases (the rest: tests/onnx/check_export.py, in ONNX Runtime)
  CHECK(bytes.find("pdyolo") != std::string::npos);
  CHECK(bytes.find("{0: 'it\\'s', 1: 'class1'") != std::string::npos);
  o.height = 60;
  CHECK(test::error_of([&] { graph::export_onnx(m.graph, o); }).find("onnx export: the image size 60x64 is not a multiple of the largest stride 8") !=
        std::string::npos);
  o.height = 64, o.opset = 11;
  CHECK(test::error_of([&] { graph::export_onnx(m.graph, o); }).find("opset 11 is not supported (12 to 14") != std::string::npos);
}
