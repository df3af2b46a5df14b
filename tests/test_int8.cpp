// The int8 kernels (kernels/cpu/qconv.hpp and its AVX-512 VNNI, AVX2, NEON sdot and plain NEON
// micro-kernels) and the planned int8 executor (quant/int8_executor.hpp), against the definitions:
// every accumulator of odd conv shapes, every requantized level against kernels/int8_scheme.hpp, and whole
// models bit-identical to the scalar reference integer runtime on every kernel the CPU has. Also
// cross-compiled for AArch64 and run under qemu-aarch64 (tests/arm/cross_test.cmake), where an int8
// model written on x86 must give the x86 raw maps bit for bit.
#include "test_main.hpp"

#include <cstdlib>
#include <cstring>

#include "pdyolo/graph/fuse.hpp"
#include "pdyolo/io/npy.hpp"
#include "pdyolo/kernels/cpu/qconv.hpp"
#include "pdyolo/quant/model_file.hpp"
#include "model_util.hpp"
#include "test_util.hpp"

using namespace pdyolo;
using namespace pdyolo::quant;

namespace {

// Each odd conv shape through the int8 kernel of `isa` against the definition, accumulator by
// accumulator: Σ (x − z)·w over the window, zero padding contributing nothing. The input is NHWC with
// a border of zero points and a pixel stride wider than its channels (a concat's slice).
void check_qconv(kernels::cpu::QconvIsa isa) {
  using kernels::cpu::QConvGeometry;
  const std::vector<QConvGeometry> shapes{
      {3, 17, 13, 16, 3, 2, 1, 1},    // the first conv: 3 channels, stride 2, odd sizes
      {13, 9, 11, 21, 1, 1, 0, 1},    // 1×1, channels off the 32-channel and 4-channel grids
      {24, 7, 30, 40, 3, 1, 1, 1},    // 3×3, rows of 30: two full 12-pixel segments and a partial one
      {12, 8, 6, 12, 3, 1, 1, 4},     // grouped
      {8, 5, 9, 8, 3, 2, 1, 8},       // depthwise, stride 2
      {5, 6, 6, 7, 5, 1, 2, 1},       // 5×5
      {64, 4, 4, 70, 1, 1, 0, 1},     // three channel blocks, the last partial
      {64, 9, 37, 40, 3, 1, 1, 1},    // AMX: 64 channels, rows of 37 (a last segment moved left)
      {128, 5, 20, 70, 1, 1, 0, 1},   // AMX: 1×1, 128 channels, a partial channel block
      {64, 8, 34, 32, 3, 2, 1, 1},    // AMX: stride 2, rows of 17
      {96, 5, 18, 33, 3, 1, 1, 1},    // AMX: 96 channels (64, then 32 through the half-width tiles)
      {32, 7, 40, 64, 3, 2, 1, 1},    // AMX: 32 channels only, stride 2
      {512, 3, 3, 64, 3, 1, 1, 1}};   // the worst case: every level 255, every weight ±127, 4608 products
  Generator gen(17);
  int64_t checked = 0;
  for (const QConvGeometry& g : shapes) {
    const bool worst = &g == &shapes.back();
    const int64_t k2 = g.kernel * g.kernel, in_per_group = g.in_per_group(), out_per_group = g.out_per_group();
    std::vector<int8_t> w(static_cast<size_t>(g.out_channels * in_per_group * k2));
    for (size_t k = 0; k < w.size(); ++k)  // the full ±127; in the worst case +127 for even channels, −127 for odd ones
      w[k] = worst ? static_cast<int8_t>(k / static_cast<size_t>(in_per_group * k2) % 2 ? -127 : 127) : static_cast<int8_t>(static_cast<int64_t>(gen.randint(255)) - 127);
    const uint8_t zero = worst ? 0 : static_cast<uint8_t>(gen.randint(256));
    const int64_t stride = g.in_channels + 5, p = g.padding, row = (g.width + 2 * p) * stride;
    std::vector<uint8_t> buffer(static_cast<size_t>((g.height + 2 * p) * row + 64), zero);
    const kernels::cpu::U8Image x{buffer.data() + p * row + p * stride, stride, row};
    std::vector<uint8_t> dense(static_cast<size_t>(g.in_channels * g.height * g.width));  // [C, H, W]
    for (int64_t c = 0; c < g.in_channels; ++c)
      for (int64_t y = 0; y < g.height; ++y)
        for (int64_t xx = 0; xx < g.width; ++xx)
          x.at(y, xx)[c] = dense[static_cast<size_t>((c * g.height + y) * g.width + xx)] = worst ? 255 : static_cast<uint8_t>(gen.randint(256));
    const kernels::cpu::PackedQConvWeights packed = kernels::cpu::pack_qconv_weights(w.data(), g.out_channels, in_per_group, g.kernel, g.groups);
    const int64_t oh = g.out_height(), ow = g.out_width();
    std::vector<int64_t> got(static_cast<size_t>(g.out_channels * oh * ow), INT64_MIN);
    kernels::cpu::qconv2d_tiles(x, g, packed, [&](int64_t oy, int64_t ox0, int64_t pixels, int64_t c0, int64_t channels, const int32_t* acc) {
      for (int64_t j = 0; j < channels; ++j)
        for (int64_t q = 0; q < pixels; ++q)
          got[static_cast<size_t>(((c0 + j) * oh + oy) * ow + ox0 + q)] =
              acc[q * kernels::kQconvChannels + j] - static_cast<int64_t>(zero) * packed.weight_sums[static_cast<size_t>(c0 + j)];
    }, isa);
    int64_t wrong = 0;
    for (int64_t o = 0; o < g.out_channels; ++o)
      for (int64_t oy = 0; oy < oh; ++oy)
        for (int64_t ox = 0; ox < ow; ++ox) {
          int64_t expected = 0;
          for (int64_t ci = 0; ci < in_per_group; ++ci)
            for (int64_t ky = 0; ky < g.kernel; ++ky)
              for (int64_t kx = 0; kx < g.kernel; ++kx) {
                const int64_t iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx;
                if (iy < 0 || iy >= g.height || ix < 0 || ix >= g.width) continue;
                const int64_t c = (o / out_per_group) * in_per_group + ci;
                expected += (static_cast<int64_t>(dense[static_cast<size_t>((c * g.height + iy) * g.width + ix)]) - zero) *
                            w[static_cast<size_t>(((o * in_per_group + ci) * g.kernel + ky) * g.kernel + kx)];
              }
          wrong += got[static_cast<size_t>((o * oh + oy) * ow + ox)] != expected;
          ++checked;
        }
    CHECK_MESSAGE(wrong == 0, "shape in ", g.in_channels, "x", g.height, "x", g.width, " out ", g.out_channels, " k", g.kernel, " s", g.stride,
                  " g", g.groups);
  }
  MESSAGE(std::string(kernels::cpu::qconv_isa_name(isa)) << ": " << checked << " accumulators equal to the definition");
}

// The fused requantization of `isa` against int8_scheme.hpp's requantize_to_u8 and the table, on random
// accumulators, offsets and multipliers (tiny, huge, ties), zero points at both ends, partial tiles.
void check_requantize_tile(kernels::cpu::QconvIsa isa) {
  Generator gen(5);
  int64_t checked = 0, wrong = 0;
  for (int trial = 0; trial < 60; ++trial) {
    const int64_t out = 1 + static_cast<int64_t>(gen.randint(70)), in_per_group = 1 + static_cast<int64_t>(gen.randint(300));
    std::vector<int8_t> w(static_cast<size_t>(out * in_per_group));
    for (int8_t& v : w) v = static_cast<int8_t>(static_cast<int64_t>(gen.randint(255)) - 127);
    const kernels::cpu::PackedQConvWeights packed = kernels::cpu::pack_qconv_weights(w.data(), out, in_per_group, 1, 1);
    const int32_t input_zero = static_cast<int32_t>(gen.randint(256)), output_zero = trial % 3 == 0 ? 0 : trial % 3 == 1 ? 255 : static_cast<int32_t>(gen.randint(256));
    std::vector<int32_t> bias;
    std::vector<Multiplier> multipliers;
    std::vector<std::pair<int32_t, int32_t>> pairs;
    for (int64_t c = 0; c < out; ++c) {
      bias.push_back(static_cast<int32_t>(gen.randint(2000001)) - 1000000);
      const double m = std::ldexp(0.5 + gen.uniform() / 2, -static_cast<int>(gen.randint(40)) + (trial % 5 == 0 ? 8 : 0));
      multipliers.push_back(make_multiplier(m));
      pairs.emplace_back(multipliers.back().value, multipliers.back().shift);
    }
    ActivationTable table{};
    for (int l = 0; l < 256; ++l) table[static_cast<size_t>(l)] = static_cast<uint8_t>((l * 37 + trial) % 256);
    const bool use_table = trial % 2 == 0;
    const kernels::cpu::QConvRequant r =
        kernels::cpu::make_qconv_requant(packed, input_zero, bias, pairs, output_zero, use_table ? table.data() : nullptr);
    for (int64_t c0 = 0; c0 < out; c0 += kernels::kQconvChannels) {
      const int64_t channels = std::min(kernels::kQconvChannels, out - c0), pixels = 1 + static_cast<int64_t>(gen.randint(kernels::kQconvPixels));
      std::vector<int32_t> acc(static_cast<size_t>(kernels::kQconvPixels * kernels::kQconvChannels));
      for (int32_t& a : acc) a = static_cast<int32_t>(gen.randint(20000001)) - 10000000;
      const int64_t stride = channels + 3;
      std::vector<uint8_t> dst(static_cast<size_t>(pixels * stride), 77);
      kernels::cpu::requantize_tile(r, acc.data(), pixels, c0, channels, dst.data(), stride, isa);
      for (int64_t p = 0; p < pixels; ++p) {
        for (int64_t j = 0; j < channels; ++j) {
          const size_t c = static_cast<size_t>(c0 + j);
          const int32_t total = acc[static_cast<size_t>(p * kernels::kQconvChannels + j)] + bias[c] - input_zero * packed.weight_sums[c];
          const uint8_t level = requantize_to_u8(total, multipliers[c], output_zero);
          wrong += dst[static_cast<size_t>(p * stride + j)] != (use_table ? table[level] : level);
          ++checked;
        }
        for (int64_t j = channels; j < stride; ++j) wrong += dst[static_cast<size_t>(p * stride + j)] != 77;  // nothing written past the tile
      }
    }
  }
  CHECK(wrong == 0);
  MESSAGE(std::string(kernels::cpu::qconv_isa_name(isa)) << ": " << checked << " requantized levels equal to int8_scheme.hpp's");
}

// A whole model through the fast kernels (the best this CPU has) and through the scalar reference:
// every output identical.
// float_conv: the conv kept in float; min_levels: how many values at least hold levels.
void check_fast_runtime_is_exact(const std::string& cfg, kernels::cpu::QconvIsa isa, const std::string& float_conv = "model.2",
                                 int64_t min_levels = 30) {
  models::YoloModel m = test::randomised_model(cfg, 8);
  graph::fuse(m.graph);
  m.graph.eval();
  QuantPlan plan = plan_quantization(m.graph);
  int calls = 0;
  calibrate(m.graph, plan, ObserverKind::percentile, [&] { return calls++ < 1 ? test::eight_bit_images(2, 64, 41) : Tensor(); });
  keep_in_float(m.graph, plan, {float_conv});
  const Tensor images = test::eight_bit_images(2, 64, 42);
  std::vector<Tensor> ref_levels, fast_levels;
  const graph::DetectOutput ref = IntegerModel(m.graph, plan, Backend::ref).run(images, &ref_levels);
  const graph::DetectOutput fast = IntegerModel(m.graph, plan, Backend::cpu, isa).run(images, &fast_levels);
  for (size_t l = 0; l < ref.raw.size(); ++l) CHECK(ref.raw[l].to_vector() == fast.raw[l].to_vector());
  CHECK(ref.decoded.to_vector() == fast.decoded.to_vector());
  // Decoded boxes only: the head convs decode in their epilogue (the conv kept in float is not a
  // head conv, so every level takes the fused path).
  // Without levels a batch runs image by image: the same maps and boxes.
  const graph::DetectOutput by_image = IntegerModel(m.graph, plan, Backend::cpu, isa).run(images);
  for (size_t l = 0; l < ref.raw.size(); ++l) CHECK(ref.raw[l].to_vector() == by_image.raw[l].to_vector());
  CHECK(ref.decoded.to_vector() == by_image.decoded.to_vector());
  const IntegerModel boxes_only(m.graph, plan, Backend::cpu, isa);
  for (int run = 0; run < 2; ++run) CHECK(boxes_only.run(images, nullptr, true, false).decoded.to_vector() == ref.decoded.to_vector());
  QuantPlan head_in_float = plan;  // one level's head conv in float: its maps decoded as a whole
  head_in_float.float_convs.resize(m.graph.nodes.size(), false);
  head_in_float.float_convs[static_cast<size_t>(head_convs(m.graph)[1])] = true;
  CHECK(IntegerModel(m.graph, head_in_float, Backend::cpu, isa).run(images, nullptr, true, false).decoded.to_vector() ==
        IntegerModel(m.graph, head_in_float, Backend::ref).run(images).decoded.to_vector());
  int64_t compared = 0;
  for (size_t i = 0; i < ref_levels.size(); ++i)
    if (ref_levels[i].defined()) {
      CHECK(ref_levels[i].to_vector() == fast_levels[i].to_vector());
      ++compared;
    }
  CHECK(compared > min_levels);
}

// Both checks on one kernel, or a skip with the reason when this CPU cannot run it.
void check_kernel(kernels::cpu::QconvIsa isa, const std::string& missing) {
  if (!kernels::cpu::qconv_isa_available(isa)) return test::skip(missing);
  check_qconv(isa);
  check_requantize_tile(isa);
}

}  // namespace

TEST_CASE("int8 conv kernels: the portable kernel and requantization give the definition's values on odd shapes") {
  check_kernel(kernels::cpu::QconvIsa::generic, "");
}

TEST_CASE("int8 conv kernels: AVX-512 VNNI and its requantization give the definition's values on odd shapes" * doctest::test_suite("requires_avx512")) {
  check_kernel(kernels::cpu::QconvIsa::avx512_vnni, "this CPU has no AVX-512 VNNI and VBMI");
}

TEST_CASE("int8 conv kernels: AMX tiles give the definition's accumulators on odd shapes" * doctest::test_suite("requires_amx")) {
  check_kernel(kernels::cpu::QconvIsa::amx, "this CPU has no AMX (or Linux refused this process the tile state)");
}

TEST_CASE("int8 conv kernels: AVX2 (widened to 16 bits, no saturation) gives the definition's accumulators on odd shapes" * doctest::test_suite("requires_x86")) {
  check_kernel(kernels::cpu::QconvIsa::avx2, "this CPU has no AVX2");
}

TEST_CASE("int8 conv kernels: NEON sdot and plain NEON give the definition's accumulators on odd shapes" * doctest::test_suite("requires_neon")) {
  check_kernel(kernels::cpu::QconvIsa::neon, "not an AArch64 CPU (tests/arm runs this under qemu-aarch64)");
  check_kernel(kernels::cpu::QconvIsa::neon_dotprod, "this CPU has no dot product (armv8.2-a)");
}

TEST_CASE("the planned int8 executor is bit-identical to the scalar reference runtime: yolov7-tiny, yolov7 and a ReOrg model") {
  for (kernels::cpu::QconvIsa isa : kernels::cpu::kQconvIsas) {
    if (!kernels::cpu::qconv_isa_available(isa)) {
      MESSAGE("not run on this CPU: " << std::string(kernels::cpu::qconv_isa_name(isa)));
      continue;
    }
    check_fast_runtime_is_exact(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", isa);
    if (isa == kernels::cpu::best_qconv_isa()) check_fast_runtime_is_exact(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7.yaml", isa);
    // ReOrg moves levels: on the image and on a conv's output (tests/data/cfg/reorg-tiny.yaml).
    check_fast_runtime_is_exact(std::string(PDYOLO_SOURCE_DIR) + "/tests/data/cfg/reorg-tiny.yaml", isa, "model.4", 8);
    MESSAGE("bit-identical with the int8 kernel " << std::string(kernels::cpu::qconv_isa_name(isa)));
  }
}

TEST_CASE("the int8 runtime runs on the backends whose u8 kernels the table lists, and refuses the others by name") {
  models::YoloModel m = test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/tests/data/cfg/reorg-tiny.yaml", 8);
  graph::fuse(m.graph);
  m.graph.eval();
  QuantPlan plan = plan_quantization(m.graph);
  int calls = 0;
  calibrate(m.graph, plan, ObserverKind::minmax, [&] { return calls++ < 1 ? test::eight_bit_images(1, 64, 43) : Tensor(); });
  const std::string err = test::error_of([&] { IntegerModel(m.graph, plan, Backend::cuda); });
  CHECK(err.find("int8 model: node '") != std::string::npos);
  CHECK(err.find("(reorg) needs reorg kernels for u8, which backend cuda does not have") != std::string::npos);  // its first step
  const Tensor image = test::eight_bit_images(1, 64, 44);
  CHECK(IntegerModel(m.graph, plan, Backend::ref).run(image).decoded.to_vector() ==
        IntegerModel(m.graph, plan, Backend::cpu).run(image).decoded.to_vector());
}

// An int8 yolov7-tiny (random weights, calibrated) and an 8-bit image: the planned executor's raw
// maps must be the same bits on every machine and every kernel. PDYOLO_INT8_CROSS=write:DIR writes
// the int8 model file and the raw maps into DIR (tests/arm/cross_test.cmake runs the x86 build so);
// =compare:DIR loads that file and compares the raw maps of every kernel this CPU has (the aarch64
// build under qemu-aarch64) and of the scalar reference.
TEST_CASE("int8 raw maps are the same bits on every machine" * doctest::test_suite("requires_cross")) {
  const char* env = std::getenv("PDYOLO_INT8_CROSS");
  if (!env) return test::skip("PDYOLO_INT8_CROSS=write:DIR or compare:DIR is not set (tests/arm/cross_test.cmake sets it)");
  const std::string spec(env), mode = spec.substr(0, spec.find(':')), dir = spec.substr(spec.find(':') + 1);
  REQUIRE((mode == "write" || mode == "compare"));
  const Tensor image = test::eight_bit_images(1, 96, 77);
  const std::string file = dir + "/int8.safetensors";
  if (mode == "write") {
    models::YoloModel m = test::randomised_model(std::string(PDYOLO_SOURCE_DIR) + "/cfg/training/yolov7-tiny.yaml", 21);
    graph::fuse(m.graph);
    m.graph.eval();
    QuantPlan plan = plan_quantization(m.graph);
    int calls = 0;
    calibrate(m.graph, plan, ObserverKind::percentile, [&] { return calls++ < 1 ? test::eight_bit_images(2, 96, 76) : Tensor(); });
    const IntegerModel integer(m.graph, plan);
    save_quantized(file, m, integer, "percentile");
    const graph::DetectOutput out = integer.run(image);
    for (size_t l = 0; l < out.raw.size(); ++l) io::save_npy(dir + "/raw" + std::to_string(l) + ".npy", out.raw[l]);
    MESSAGE("wrote " << file << " and " << out.raw.size() << " raw maps (" << std::string(kernels::cpu::qconv_isa_name(kernels::cpu::best_qconv_isa())) << ")");
    return;
  }
  const QuantizedModel q = load_quantized(file);
  std::vector<Tensor> expected;
  for (size_t l = 0; l < 3; ++l) expected.push_back(io::load_npy(dir + "/raw" + std::to_string(l) + ".npy"));
  auto compare = [&](const graph::DetectOutput& out, const std::string& what) {
    REQUIRE(out.raw.size() == expected.size());
    int64_t differing = 0;
    for (size_t l = 0; l < expected.size(); ++l) {
      const std::vector<float> a = out.raw[l].to_vector(), b = expected[l].to_vector();
      REQUIRE(a.size() == b.size());
      for (size_t k = 0; k < a.size(); ++k) differing += std::memcmp(&a[k], &b[k], sizeof(float)) != 0;
    }
    CHECK_MESSAGE(differing == 0, what, ": ", differing, " raw values differ from the file's");
    MESSAGE(what << ": the raw maps written on the other machine, bit for bit");
  };
  compare(IntegerModel(q.model.graph, q.plan, Backend::ref).run(image), "scalar reference");
  for (kernels::cpu::QconvIsa isa : kernels::cpu::kQconvIsas)
    if (kernels::cpu::qconv_isa_available(isa))
      compare(IntegerModel(q.model.graph, q.plan, Backend::cpu, isa).run(image), kernels::cpu::qconv_isa_name(isa));
}
