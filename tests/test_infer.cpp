// The inference path: the implicit-im2col convolution with pre-packed weights and a fused
// epilogue against the reference kernel (every GEMM micro-kernel this CPU has), and the planned
// executor against the graph's own forward pass on yolov7-tiny and yolov7, plus the fixture.
#include "test_main.hpp"

#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/graph/executor.hpp"
#include "pdyolo/models/weights.hpp"
#include "test_util.hpp"

using namespace pdyolo;
namespace kc = pdyolo::kernels::cpu;

namespace {

std::vector<float> random_vector(int64_t n, Generator& gen) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = gen.uniform(-1.0f, 1.0f);
  return v;
}

// The decoded boxes of both paths: coordinates within 1e-4 of the largest, scores within 1e-4.
void check_same_detections(const Tensor& ours, const Tensor& expected) {
  REQUIRE(ours.shape() == expected.shape());
  const int64_t no = expected.shape()[2];
  CHECK(test::max_rel_diff(ours.narrow(2, 0, 4), expected.narrow(2, 0, 4)) < 1e-4);
  CHECK(test::max_rel_diff(ours.narrow(2, 4, no - 4), expected.narrow(2, 4, no - 4)) < 1e-4);
}

models::YoloModel fused_model(const std::string& cfg, int64_t nc, uint64_t seed) {
  models::YoloModel m =
      models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/" + cfg, nc), {false, seed});
  graph::fuse(m.graph);
  m.graph.eval();
  return m;
}

// A convolution case: its geometry and the activation fused after it.
struct ConvCase {
  const char* name;
  kernels::Conv2dGeometry g;
  Activation act;
};

// Random input, weights and bias for a case, and the reference kernel's act(w ⊛ x + bias).
struct ConvProblem {
  std::vector<float> x, w, bias, expected;

  ConvProblem(const ConvCase& c, Generator& gen) {
    const kernels::Conv2dGeometry& g = c.g;
    x = random_vector(g.in_channels * g.in_h * g.in_w, gen);
    w = random_vector(g.out_channels * g.patch_size(), gen);
    bias = random_vector(g.out_channels, gen);
    expected.resize(static_cast<size_t>(g.out_channels * g.out_plane()));
    kernels::ref::conv2d_forward(g, x.data(), w.data(), bias.data(), expected.data());
    kernels::with_activation({c.act, 0.1f}, [&](auto f, auto) {
      for (float& v : expected) v = f(v);
    });
  }
  // The largest |y − expected| / max(1, |expected|) over the output (y may be longer).
  double worst_error(const std::vector<float>& y) const {
    double worst = 0;
    for (size_t i = 0; i < expected.size(); ++i)
      worst = std::max(worst, std::fabs(double(y[i]) - expected[i]) / std::max(1.0, std::fabs(double(expected[i]))));
    return worst;
  }
};

}  // namespace

TEST_CASE("AVX-512 patch packing writes the same panels as the portable packing" * doctest::test_suite("requires_avx512")) {
  if (!kc::gemm_isa_available(kc::GemmIsa::avx512)) {
    return test::skip("this CPU has no AVX-512");
  }
#ifdef PDYOLO_X86_KERNELS
  struct Case {
    const char* name;
    kernels::Conv2dGeometry g;
    int64_t k0, kc, col0, cols;  // the block of the patch matrix packed
  };
  // batch, C, H, W, OC, KH, KW, OH, OW, stride h/w, pad h/w, dilation h/w, groups
  const std::vector<Case> cases = {
      {"3x3 s1 p1, whole matrix", {1, 5, 9, 40, 8, 3, 3, 9, 40, 1, 1, 1, 1, 1, 1, 1}, 0, 45, 0, 360},
      {"3x3 s1 p1, block starting mid-channel and mid-row", {1, 5, 9, 40, 8, 3, 3, 9, 40, 1, 1, 1, 1, 1, 1, 1}, 13, 20, 57, 150},
      {"3x3 s2 p1, narrow rows (gathers)", {1, 4, 13, 10, 20, 3, 3, 7, 5, 2, 2, 1, 1, 1, 1, 1}, 0, 36, 0, 35},
      {"3x3 s2 p1, rows of 20 (loads and permutes)", {1, 3, 11, 40, 8, 3, 3, 6, 20, 2, 2, 1, 1, 1, 1, 1}, 0, 27, 0, 120},
      {"3x3 s2 p1, odd width, block mid-row", {1, 3, 11, 41, 8, 3, 3, 6, 21, 2, 2, 1, 1, 1, 1, 1}, 5, 20, 7, 100},
      {"1x1 s2, rows of 17", {1, 2, 6, 34, 8, 1, 1, 3, 17, 2, 2, 0, 0, 1, 1, 1}, 0, 2, 0, 51},
      {"5x5 dilation 2 p2, narrow rows", {1, 3, 12, 7, 8, 5, 5, 8, 3, 1, 1, 2, 2, 2, 2, 1}, 7, 60, 3, 19},
      {"1x1 s2", {1, 6, 8, 8, 10, 1, 1, 4, 4, 2, 2, 0, 0, 1, 1, 1}, 0, 6, 0, 16},
  };
  Generator gen(11);
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const kernels::Conv2dGeometry& g = c.g;
    const std::vector<float> x = random_vector(g.in_channels * g.in_h * g.in_w, gen);
    const size_t size = static_cast<size_t>(c.kc * ((c.cols + 31) / 32) * 32);
    std::vector<float> expected(size, -1.0f), got(size, -2.0f);
    kc::pack_conv_panels(g, x.data(), c.k0, c.kc, c.col0, c.cols, 32, expected.data());
    kernels::x86::pack_conv_panels_avx512(g, x.data(), c.k0, c.kc, c.col0, c.cols, got.data());
    CHECK(got == expected);
  }
  // A 1×1 convolution's input packed as a plain row-major matrix, with a partial last panel.
  const std::vector<float> b = random_vector(7 * 50, gen);
  for (int64_t cols : {50, 45, 12}) {
    CAPTURE(cols);
    std::vector<float> expected(static_cast<size_t>(5 * 64), -1.0f), got(expected.size(), -2.0f);
    {
      const test::IsaScope portable(kc::GemmIsa::generic);  // pack_b_panels would call pack_rows_avx512 itself
      kc::detail::pack_b_panels(kernels::MatrixView{b.data(), 50, 1}, 2, 5, 50 - cols, cols, 32, expected.data());
    }
    kernels::x86::pack_rows_avx512(b.data(), 50, 2, 5, 50 - cols, cols, got.data());
    expected.resize(static_cast<size_t>(5 * 32 * ((cols + 31) / 32)));
    got.resize(expected.size());
    CHECK(got == expected);
  }
#endif
}

TEST_CASE("conv2d_image (pre-packed weights, implicit im2col, bias + activation epilogue) matches the reference") {
  // batch, C, H, W, OC, KH, KW, OH, OW, stride h/w, pad h/w, dilation h/w, groups
  const std::vector<ConvCase> cases = {
      {"3x3 s1 p1", {1, 5, 9, 11, 37, 3, 3, 9, 11, 1, 1, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"3x3 s2 p1", {1, 4, 13, 10, 20, 3, 3, 7, 5, 2, 2, 1, 1, 1, 1, 1}, Activation::silu},
      {"1x1", {1, 40, 6, 7, 9, 1, 1, 6, 7, 1, 1, 0, 0, 1, 1, 1}, Activation::identity},
      {"1x1 s2", {1, 6, 8, 8, 10, 1, 1, 4, 4, 2, 2, 0, 0, 1, 1, 1}, Activation::relu},
      {"5x5 groups 2 dilation 2", {1, 6, 12, 12, 8, 5, 5, 8, 8, 1, 1, 2, 2, 2, 2, 2}, Activation::silu},
      {"3x3 deep (several K blocks)", {1, 64, 6, 6, 19, 3, 3, 6, 6, 1, 1, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"3x3 wide rows (panels span rows)", {1, 3, 4, 45, 8, 3, 3, 4, 45, 1, 1, 1, 1, 1, 1, 1}, Activation::identity},
      {"3x3 s2 p1 on 40x40", {1, 6, 40, 40, 16, 3, 3, 20, 20, 2, 2, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"3x3 s1 p1 on 48x48 (several column chunks)", {1, 8, 48, 48, 16, 3, 3, 48, 48, 1, 1, 1, 1, 1, 1, 1}, Activation::silu},
  };
  Generator gen(3);
  for (const ConvCase& c : cases) {
    CAPTURE(c.name);
    const kernels::Conv2dGeometry& g = c.g;
    const ConvProblem p(c, gen);
    for (kc::GemmIsa isa : test::available_gemm_isas()) {
      CAPTURE(kc::gemm_micro_kernel(isa).name);
      const test::IsaScope scope(isa);
      kc::PackedConvWeights packed;
      kc::pack_conv_weights(g, p.w.data(), packed);
      std::vector<float> y(p.expected.size(), -7.0f);
      kc::conv2d_image(g, packed, p.x.data(), p.bias.data(), {c.act, 0.1f}, y.data());
      CHECK(p.worst_error(y) < 1e-5);
    }
  }
}

// Runs each case through conv2d_image with weights packed as inference packs them (Winograd where
// it serves), on the AVX-512 micro-kernel: `route` must take the case; the result must match the
// reference within `tolerance`, with nothing written before or past the output; then
// more(g, problem, packed) checks what is particular to the route.
template <class More>
void check_avx512_route(const std::vector<ConvCase>& cases, uint64_t seed, bool (*route)(const kernels::Conv2dGeometry&),
                        double tolerance, const More& more) {
  const int64_t guard = 40;  // floats before and after the output that must stay untouched
  Generator gen(seed);
  for (const ConvCase& c : cases) {
    CAPTURE(c.name);
    const kernels::Conv2dGeometry& g = c.g;
    const test::IsaScope scope(kc::GemmIsa::avx512);
    REQUIRE(route(g));
    const ConvProblem p(c, gen);
    kc::PackedConvWeights packed;
    kc::pack_conv_weights_with_winograd(g, p.w.data(), packed);
    std::vector<float> y(guard + p.expected.size() + guard, -7.0f);
    kc::conv2d_image(g, packed, p.x.data(), p.bias.data(), {c.act, 0.1f}, y.data() + guard);
    CHECK(p.worst_error({y.begin() + guard, y.end() - guard}) < tolerance);
    const auto untouched = [](float v) { return v == -7.0f; };
    CHECK(std::all_of(y.begin(), y.begin() + guard, untouched));
    CHECK(std::all_of(y.end() - guard, y.end(), untouched));
    more(g, p, packed);
  }
}

TEST_CASE("Winograd F(2x2, 3x3) matches the reference convolution and writes nothing outside its output" * doctest::test_suite("requires_avx512")) {
  if (!kc::gemm_isa_available(kc::GemmIsa::avx512)) {
    return test::skip("this CPU has no AVX-512");
  }
  // batch, C, H, W, OC, KH, KW, OH, OW, stride h/w, pad h/w, dilation h/w, groups
  const std::vector<ConvCase> cases = {
      {"p1 on 40x40 (tile rows of 20: halves side by side and across rows)", {1, 7, 40, 40, 16, 3, 3, 40, 40, 1, 1, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"p1 on 64x64 (16 tiles side by side in every half)", {1, 8, 64, 64, 20, 3, 3, 64, 64, 1, 1, 1, 1, 1, 1, 1}, Activation::silu},
      {"p1, odd sizes (half tiles at the bottom and right)", {1, 5, 9, 13, 12, 3, 3, 9, 13, 1, 1, 1, 1, 1, 1, 1}, Activation::silu},
      {"p0 (valid)", {1, 5, 11, 14, 9, 3, 3, 9, 12, 1, 1, 0, 0, 1, 1, 1}, Activation::identity},
      {"p2 (output larger than input)", {1, 3, 6, 5, 9, 3, 3, 8, 7, 1, 1, 2, 2, 1, 1, 1}, Activation::relu},
      {"p1 on 10x10 (tile rows of 5: each half spans 4 rows)", {1, 6, 10, 10, 8, 3, 3, 10, 10, 1, 1, 1, 1, 1, 1, 1}, Activation::silu},
      {"p1 on a 1-pixel-wide image (a run per tile)", {1, 4, 9, 1, 8, 3, 3, 9, 1, 1, 1, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"300 input channels (two K blocks), 200 output channels (row splits)", {1, 300, 6, 7, 200, 3, 3, 6, 7, 1, 1, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"p1 on 70x66, 3 input channels (many panel groups)", {1, 3, 70, 66, 11, 3, 3, 70, 66, 1, 1, 1, 1, 1, 1, 1}, Activation::silu},
  };
  // the bound: the transforms add rounding on deep sums (2.4e-5 seen at K = 2700)
  check_avx512_route(cases, 17, kc::conv_uses_winograd, 1e-4, [](const kernels::Conv2dGeometry&, const ConvProblem&,
                                                                 const kc::PackedConvWeights& packed) {
    CHECK((packed.uses_winograd && packed.winograd.u.size() == 16));  // packed for Winograd: conv2d_image took that route
  });
}

TEST_CASE("the phase-row convolution (strided layers with long rows) gives the GEMM's results and writes nothing outside its output" * doctest::test_suite("requires_avx512")) {
  if (!kc::gemm_isa_available(kc::GemmIsa::avx512)) {
    return test::skip("this CPU has no AVX-512");
  }
  // batch, C, H, W, OC, KH, KW, OH, OW, stride h/w, pad h/w, dilation h/w, groups
  const std::vector<ConvCase> cases = {
      {"3x3 s2 p1, rows of 160 (whole 32-column tiles)", {1, 4, 5, 320, 16, 3, 3, 3, 160, 2, 2, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"3x3 s2 p1, rows of 130 (a 16-column last tile), 13 output channels", {1, 5, 4, 259, 13, 3, 3, 2, 130, 2, 2, 1, 1, 1, 1, 1}, Activation::silu},
      {"3x3 s2 p1, odd width (the last input column has no odd partner)", {1, 3, 3, 301, 9, 3, 3, 2, 151, 2, 2, 1, 1, 1, 1, 1}, Activation::identity},
      {"3x3 s2 p1, rows of 143 (15 columns in the last tile)", {1, 2, 6, 285, 8, 3, 3, 3, 143, 2, 2, 1, 1, 1, 1, 1}, Activation::relu},
      {"3x3 s2 p1, 33 input channels (two K blocks)", {1, 33, 3, 320, 10, 3, 3, 2, 160, 2, 2, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"3x3 s2 p0 (no leading padding)", {1, 3, 5, 257, 8, 3, 3, 2, 128, 2, 2, 0, 0, 1, 1, 1}, Activation::relu},
      {"3x3, stride 1 down and 2 across", {1, 3, 6, 262, 8, 3, 3, 6, 131, 1, 2, 1, 1, 1, 1, 1}, Activation::leaky_relu},
      {"5x5 s3 p2 dilation 2 (three phases)", {1, 2, 9, 386, 9, 5, 5, 2, 128, 3, 3, 2, 2, 2, 2, 1}, Activation::silu},
      {"1x1 s2", {1, 6, 4, 300, 7, 1, 1, 2, 150, 2, 2, 0, 0, 1, 1, 1}, Activation::identity},
  };
  check_avx512_route(cases, 19, kc::conv_uses_phase_rows, 1e-5, [](const kernels::Conv2dGeometry& g, const ConvProblem& p,
                                                                    const kc::PackedConvWeights& packed) {
    // It sums in the GEMM's order, so the sums are the GEMM's to the bit (the activations differ
    // in rounding where the GEMM finishes an edge tile with the scalar loop).
    std::vector<float> sums(p.expected.size(), -9.0f), gemm_sums(p.expected.size(), -8.0f);
    kc::conv2d_image(g, packed, p.x.data(), p.bias.data(), {}, sums.data());
    kc::conv2d_image_gemm(g, packed, p.x.data(), p.bias.data(), {}, gemm_sums.data());
    CHECK(sums == gemm_sums);
  });
  // Weights packed for a narrower layer of the same shape lack the layout: a clear error, not a crash.
  const kernels::Conv2dGeometry wide{1, 2, 3, 300, 8, 3, 3, 2, 150, 2, 2, 1, 1, 1, 1, 1}, narrow{1, 2, 3, 30, 8, 3, 3, 2, 15, 2, 2, 1, 1, 1, 1, 1};
  {
    const test::IsaScope scope(kc::GemmIsa::avx512);
    kc::PackedConvWeights packed;
    const std::vector<float> w(static_cast<size_t>(8 * 2 * 9), 0.5f), x(static_cast<size_t>(2 * 3 * 300), 1.0f);
    std::vector<float> y(static_cast<size_t>(8 * 2 * 150));
    kc::pack_conv_weights(narrow, w.data(), packed);
    CHECK(test::error_of([&] { kc::conv2d_image(wide, packed, x.data(), nullptr, {}, y.data()); }).find("not packed for this strided layer") !=
          std::string::npos);
  }
  // Short rows stay with the GEMM (their tiles would be partly empty).
  CHECK_FALSE(kc::conv_uses_phase_rows({1, 32, 160, 160, 64, 3, 3, 80, 80, 2, 2, 1, 1, 1, 1, 1}));
  CHECK_FALSE(kc::conv_uses_phase_rows({1, 32, 320, 320, 64, 3, 3, 320, 320, 1, 1, 1, 1, 1, 1, 1}));  // stride 1
}

TEST_CASE("the planned executor gives the graph's detections on yolov7-tiny, reusing its buffers") {
  models::YoloModel m = fused_model("training/yolov7-tiny.yaml", 3, 11);
  Generator gen(5);
  const Tensor images = Tensor::uniform({2, 3, 96, 64}, 0.0f, 1.0f, gen);
  NoGradGuard no_grad;
  const Tensor expected = graph::forward(m.graph, images).decoded;
  graph::Executor engine(m.graph);
  const Tensor first = engine.run(images).decoded;
  check_same_detections(first, expected);
  // Buffers whose lifetimes do not overlap share memory; the values would need much more.
  CHECK(engine.arena_bytes() > 0);
  CHECK(engine.arena_bytes() < engine.unplanned_bytes() / 2);
  MESSAGE("arena ", engine.arena_bytes(), " bytes vs ", engine.unplanned_bytes(), " unplanned");
  // A second run on the same plan gives the same result; another shape and batch replans.
  CHECK(engine.run(images).decoded.to_vector() == first.to_vector());
  // The output's storage is reused by the next run once nothing holds it or a view of it.
  const float* released = nullptr;
  {
    const Tensor second = engine.run(images).decoded;
    CHECK(second.data<float>() != first.data<float>());  // `first` is still held
    released = second.data<float>();
  }
  const Tensor third = engine.run(images).decoded;
  CHECK(third.data<float>() == released);
  const Tensor view = third.narrow(0, 1, 1);
  const std::vector<float> view_before = view.to_vector();
  CHECK(engine.run(images).decoded.data<float>() != third.data<float>());  // a view of `third` is held
  CHECK(view.to_vector() == view_before);
  CHECK(first.to_vector() == third.to_vector());
  const Tensor one = images.narrow(0, 1, 1);
  check_same_detections(engine.run(one).decoded, graph::forward(m.graph, one).decoded);
}

TEST_CASE("the planned executor on the scalar reference kernels (PlannedExecutor<RefKernels>) gives the cpu kernels' detections") {
  // The same executor with another kernel set: what a device backend's kernel set plugs into.
  for (const std::string cfg : {"training/yolov7-tiny.yaml", "training/yolov7.yaml"}) {
    CAPTURE(cfg);
    models::YoloModel m = fused_model(cfg, 2, 13);
    Generator gen(6);
    const Tensor images = Tensor::uniform({2, 3, 64, 64}, 0.0f, 1.0f, gen);
    graph::PlannedExecutor<RefKernels> reference(m.graph);
    graph::Executor fast(m.graph);
    const graph::DetectOutput ref = reference.run(images, true), cpu = fast.run(images, true);
    check_same_detections(cpu.decoded, ref.decoded);
    REQUIRE(ref.raw.size() == cpu.raw.size());
    for (size_t l = 0; l < ref.raw.size(); ++l) CHECK(test::max_rel_diff(cpu.raw[l], ref.raw[l]) < 1e-4);
    CHECK(reference.arena_bytes() == fast.arena_bytes());  // one plan, whatever the kernels
  }
}

TEST_CASE("the planned executor gives the graph's detections on yolov7 (SiLU, RepConv and implicit layers fused)") {
  models::YoloModel m = fused_model("training/yolov7.yaml", 2, 4);
  Generator gen(6);
  const Tensor images = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f, gen);
  NoGradGuard no_grad;
  check_same_detections(graph::Executor(m.graph).run(images).decoded, graph::forward(m.graph, images).decoded);
}

TEST_CASE("the planned executor reproduces the reference's decoded boxes for the fixture checkpoint" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) {
    return test::skip("../shared is absent (the fixture checkpoint and its reference outputs live there)");
  }
  const std::string dir = shared + "/fixtures/yolov7-tiny-coco128/";
  models::YoloModel m = models::load_model(dir + "yolov7-tiny-coco128.pt");
  graph::fuse(m.graph);
  m.graph.eval();
  const Tensor decoded = graph::Executor(m.graph).run(io::load_npy(dir + "input_320.npy").to(DType::f32)).decoded;
  check_same_detections(decoded, io::load_npy(dir + "decoded_320.npy"));
}

namespace {
int node_named(const graph::Graph& g, const std::string& name) {
  for (size_t i = 0; i < g.nodes.size(); ++i)
    if (g.nodes[i].name == name) return static_cast<int>(i);
  FAIL("no node " << name);
  return -1;
}
}  // namespace

TEST_CASE("both executors: raw maps, taps that read a node's output, taps that replace it") {
  models::YoloModel m = fused_model("training/yolov7-tiny.yaml", 3, 12);
  const Tensor images = Tensor::uniform({2, 3, 64, 96}, 0.0f, 1.0f);
  NoGradGuard no_grad;
  // Raw maps [N, na, H, W, no] from the planned executor equal the autograd forward's.
  const graph::DetectOutput reference = graph::forward(m.graph, images);
  const graph::DetectOutput planned = graph::Executor(m.graph).run(images, /*raw*/ true, /*decode*/ false);
  REQUIRE(planned.raw.size() == 3);
  CHECK_FALSE(planned.decoded.defined());
  for (size_t l = 0; l < 3; ++l) {
    CHECK(planned.raw[l].shape() == reference.raw[l].shape());
    CHECK(test::max_rel_diff(planned.raw[l], reference.raw[l]) < 1e-5);
  }
  CHECK(reference.raw[0].shape() == Shape{2, 3, 8, 12, 8});
  // A tap on a conv whose activation is merged into it keeps the conv's own (pre-activation) output.
  const int conv = node_named(m.graph, "model.7.conv"), act = node_named(m.graph, "model.7.act");
  Tensor seen_graph, seen_planned, seen_act;
  graph::Taps taps{{conv, [&](const Tensor& v) { return seen_graph = v; }}};
  graph::forward(m.graph, images, {&taps});
  graph::Executor tapped(m.graph, {{conv, [&](const Tensor& v) { return seen_planned = v; }},
                                   {act, [&](const Tensor& v) { return seen_act = v; }}});
  check_same_detections(tapped.run(images).decoded, reference.decoded);  // observing changes nothing
  REQUIRE(seen_planned.defined());
  CHECK(seen_planned.shape() == Shape{2, 64, 16, 24});
  CHECK(test::max_rel_diff(seen_planned, seen_graph) < 1e-5);
  CHECK(seen_planned.to_vector() != seen_act.to_vector());  // LeakyReLU changed the negatives
  CHECK(test::max_rel_diff(activation(seen_planned, {Activation::leaky_relu, 0.1f}), seen_act) < 1e-6);
  // Replacing a value (what fake quantization does) changes what follows, the same in both modes.
  auto shift = [](const Tensor& v) { return v + 1.0f; };  // (random weights: activations this deep are tiny)
  const int p5 = node_named(m.graph, "model.76.act");  // read by the P5 detection conv
  graph::Taps replace{{p5, shift}};
  const graph::DetectOutput changed_graph = graph::forward(m.graph, images, {&replace});
  const graph::DetectOutput changed_planned = graph::Executor(m.graph, replace).run(images, /*raw*/ true);
  CHECK(test::max_rel_diff(changed_planned.decoded, changed_graph.decoded) < 1e-5);
  CHECK(test::max_rel_diff(changed_planned.raw[2], changed_graph.raw[2]) < 1e-5);
  const double change = test::max_rel_diff(changed_graph.raw[2], reference.raw[2]);
  MESSAGE("shifting model.76's output moves the P5 logits by ", change, " (relative)");
  CHECK(change > 1e-3);
  const int detect = m.graph.detect_node();
  CHECK(test::error_of([&] { graph::Executor(m.graph, {{detect, [](const Tensor& v) { return v; }}}); }).find("taps go on nodes with a value") !=
        std::string::npos);
  graph::Executor wrong(m.graph, {{act, [](const Tensor&) { return Tensor::zeros({1, 2}); }}});
  CHECK(test::error_of([&] { wrong.run(images); }).find("the tap of node 'model.7.act' returned [1, 2]") != std::string::npos);
}

TEST_CASE("autograd mode: gradients flow through a replacing tap (a straight-through fake quantizer)") {
  models::YoloModel m = models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3));
  const int act = node_named(m.graph, "model.2.act");
  int calls = 0;
  // Rounds to a grid of 1/8 in the forward pass; the gradient passes straight through.
  graph::Taps taps{{act, [&](const Tensor& v) {
                      ++calls;
                      Tensor rounded;
                      {
                        NoGradGuard no_grad;
                        std::vector<float> q = v.to_vector();
                        for (float& x : q) x = std::round(x * 8.0f) / 8.0f;
                        rounded = Tensor::from_vector(q, v.shape());
                      }
                      return v + (rounded - v.detach());
                    }}};
  const Tensor images = Tensor::uniform({1, 3, 64, 64}, 0.0f, 1.0f);
  const graph::DetectOutput out = graph::forward(m.graph, images, {&taps});
  Tensor loss = mean(out.raw[0] * out.raw[0]);
  loss.backward();
  CHECK(calls == 1);
  CHECK(m.graph.nodes[node_named(m.graph, "model.0.conv")].tensor("weight").grad().defined());
}

TEST_CASE("the executor refuses a graph that is not fused, naming the node") {
  const models::YoloModel m =
      models::build_yolo(models::load_model_config(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 3));
  const std::string err = test::error_of([&] { graph::Executor engine(m.graph); });
  CHECK(err.find("'model.0.bn' (batch_norm) is not fused; run graph::fuse") != std::string::npos);
  models::YoloModel fused = fused_model("training/yolov7-tiny.yaml", 3, 1);
  graph::Executor engine(fused.graph);
  CHECK(test::error_of([&] { engine.run(Tensor::zeros({1, 4, 64, 64})); }).find("the model takes 3 channels") != std::string::npos);
}

TEST_CASE("the planned skeleton: the backend's kernels checked, one plan per shape, the arena on the backend's device, steps timed") {
  models::YoloModel fused = fused_model("training/yolov7-tiny.yaml", 3, 1);
  const graph::Graph& g = fused.graph;
  const std::string err = test::error_of([&] { graph::PlannedGraph(g, Backend::cuda, DType::f32, nullptr, "executor"); });
  CHECK(err.find("executor: node '") != std::string::npos);
  CHECK(err.find("(conv) needs conv2d kernels for f32, which backend cuda does not have") != std::string::npos);
  graph::PlannedGraph planned(g, Backend::cpu, DType::f32, nullptr, "test");
  // A conv and the activation after it are one step: every other node but the input is a step of its own.
  int64_t merged = 0;
  for (const graph::PlannedStep& step : planned.steps()) merged += step.activation >= 0;
  CHECK(merged > 0);
  CHECK(static_cast<int64_t>(planned.steps().size()) == static_cast<int64_t>(g.nodes.size()) - 1 - merged);
  CHECK(planned.replan(1, 64, 64, false));
  CHECK(planned.replan(1, 64, 64, false));  // not committed: planned again
  planned.commit();
  CHECK_FALSE(planned.replan(1, 64, 64, false));
  CHECK(planned.replan(2, 64, 64, false));
  planned.allocate([](const graph::ArenaBuffer& b) { return 2 * b.channels * b.h * b.w * 4; });
  planned.commit();
  CHECK(planned.arena_bytes() == planned.arena().total);
  CHECK(planned.arena_bytes() < planned.arena().unplanned);  // buffers share memory
  const uint8_t* bytes = planned.arena_data();
  CHECK(std::all_of(bytes, bytes + planned.arena_bytes(), [](uint8_t b) { return b == 0; }));
  OpProfile profile;
  std::vector<int> order;
  planned.run("test", [&](size_t s, const graph::PlannedStep& step) {
    CHECK(&step == &planned.steps()[s]);
    order.push_back(step.node);
  });
  CHECK(order.size() == planned.steps().size());
  CHECK(std::is_sorted(order.begin(), order.end()));
  CHECK(profile.steps().size() == planned.steps().size());
  CHECK(profile.steps().front().gflop > 0.0);  // the first step is a conv
}

TEST_CASE("vectorised tile epilogues (bias + activation, SiLU's exp) match the scalar activations") {
  for (kc::GemmIsa isa : test::available_gemm_isas()) {
    const kc::GemmMicroKernel uk = kc::gemm_micro_kernel(isa);
    if (!uk.epilogue) continue;  // the portable loop is the scalar definition itself
    CAPTURE(uk.name);
    for (Activation act : {Activation::identity, Activation::relu, Activation::leaky_relu, Activation::silu}) {
      CAPTURE(static_cast<int>(act));
      const int64_t ldc = uk.nr + 3;
      std::vector<float> tile(static_cast<size_t>(uk.mr * ldc)), bias(static_cast<size_t>(uk.mr));
      for (size_t i = 0; i < tile.size(); ++i) tile[i] = -100.0f + 200.0f * static_cast<float>(i) / static_cast<float>(tile.size());
      for (size_t i = 0; i < bias.size(); ++i) bias[i] = 0.25f * static_cast<float>(i) - 1.0f;
      std::vector<float> expected = tile;
      kernels::with_activation({act, 0.1f}, [&](auto f, auto) {
        for (int64_t i = 0; i < uk.mr; ++i)
          for (int64_t j = 0; j < uk.nr; ++j) expected[i * ldc + j] = f(tile[i * ldc + j] + bias[i]);
      });
      uk.epilogue(tile.data(), ldc, bias.data(), {act, 0.1f});
      double worst = 0;
      for (size_t i = 0; i < tile.size(); ++i)
        worst = std::max(worst, std::fabs(double(tile[i]) - expected[i]) / std::max(1.0, std::fabs(double(expected[i]))));
      CHECK(worst < 1e-6);  // SiLU's exp is within a few ulp (it saturates below e^-87, where SiLU is ~0 anyway)
    }
  }
}

TEST_CASE("sigmoid_row (vectorised where the CPU allows) matches sigmoid_of, tail included") {
  std::vector<float> in(37), out(in.size());
  for (size_t i = 0; i < in.size(); ++i) in[i] = -30.0f + 60.0f * static_cast<float>(i) / static_cast<float>(in.size() - 1);
  kernels::cpu::sigmoid_row(in.data(), out.data(), static_cast<int64_t>(in.size()));
  for (size_t i = 0; i < in.size(); ++i) {
    CAPTURE(in[i]);
    CHECK(out[i] == doctest::Approx(kernels::sigmoid_of(in[i])).epsilon(1e-6));
  }
}
