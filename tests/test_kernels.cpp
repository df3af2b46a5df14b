// Every fast kernel against the reference kernel, on random shapes including odd sizes.
#include "test_main.hpp"

#include "pdyolo/kernels/eigen/sgemm.hpp"
#include "test_util.hpp"

using namespace pdyolo;
namespace cpu = kernels::cpu;

namespace {

std::vector<float> random_values(int64_t n, Generator& gen) {
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = gen.uniform(-1.0f, 1.0f);
  return v;
}

double max_rel(const std::vector<float>& got, const std::vector<float>& want) {
  double diff = 0.0, scale = 1e-6;
  for (size_t i = 0; i < want.size(); ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(got[i] - want[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(want[i])));
  }
  return diff / scale;
}

struct GemmCase {
  int64_t M, N, K;
  bool trans_a, trans_b, accumulate;
};

}  // namespace

TEST_CASE("sgemm: every micro-kernel matches the reference on odd shapes and strides") {
  Generator gen(1);
  std::vector<GemmCase> cases = {
      {1, 1, 1, false, false, false},   {7, 13, 5, false, false, false},  {8, 32, 256, false, false, false},
      {9, 33, 257, false, false, true}, {6, 16, 1, true, false, false},   {31, 100, 70, false, true, false},
      {64, 400, 600, true, true, true}, {255, 97, 128, false, false, false}, {3, 1000, 27, false, false, false},
      {130, 5, 513, true, false, true},
  };
  for (int i = 0; i < 10; ++i)  // plus random shapes
    cases.push_back({1 + static_cast<int64_t>(gen.randint(90)), 1 + static_cast<int64_t>(gen.randint(300)),
                     1 + static_cast<int64_t>(gen.randint(600)), gen.randint(2) == 1, gen.randint(2) == 1,
                     gen.randint(2) == 1});
  for (cpu::GemmIsa isa : test::available_gemm_isas()) {
    test::IsaScope scope(isa);
    for (const GemmCase& c : cases) {
      const std::string kernel = cpu::gemm_micro_kernel(isa).name;
      CAPTURE(kernel);
      CAPTURE(c.M);
      CAPTURE(c.N);
      CAPTURE(c.K);
      CAPTURE(c.trans_a);
      CAPTURE(c.trans_b);
      const auto a = random_values(c.M * c.K, gen), b = random_values(c.K * c.N, gen);
      const auto c0 = random_values(c.M * c.N, gen);
      const kernels::MatrixView A = c.trans_a ? kernels::MatrixView{a.data(), 1, c.M} : kernels::MatrixView{a.data(), c.K, 1};
      const kernels::MatrixView B = c.trans_b ? kernels::MatrixView{b.data(), 1, c.K} : kernels::MatrixView{b.data(), c.N, 1};
      std::vector<float> want = c0, got = c0;
      kernels::ref::gemm(c.M, c.N, c.K, A, B, want.data(), c.N, c.accumulate);
      cpu::sgemm(c.M, c.N, c.K, A, B, got.data(), c.N, c.accumulate);
      CHECK(max_rel(got, want) < 1e-5);
    }
  }
}

TEST_CASE("AVX-512 operand packers (copies and 16x16 transposes) write what the portable packers write" * doctest::test_suite("requires_avx512")) {
  if (!cpu::gemm_isa_available(cpu::GemmIsa::avx512)) {
    return test::skip("this CPU has no AVX-512");
  }
  Generator gen(5);
  const auto data = random_values(70 * 90, gen);
  // Packs with the given micro-kernel selected (the packers follow it).
  const auto packed = [](cpu::GemmIsa isa, size_t size, const auto& pack) {
    test::IsaScope scope(isa);
    std::vector<float> out(size, -3.0f);
    pack(out.data());
    return out;
  };
  for (const kernels::MatrixView& A : {kernels::MatrixView{data.data(), 90, 1}, kernels::MatrixView{data.data(), 1, 70}})
    for (int64_t rows : {8, 5}) {
      CAPTURE(A.row_stride);
      CAPTURE(rows);
      const auto pack = [&](float* out) { cpu::detail::pack_a_strip(A, 9, rows, 3, 37, 8, out); };
      CHECK(packed(cpu::GemmIsa::avx512, 8 * 37, pack) == packed(cpu::GemmIsa::generic, 8 * 37, pack));
    }
  for (const kernels::MatrixView& B : {kernels::MatrixView{data.data(), 90, 1}, kernels::MatrixView{data.data(), 1, 90}})
    for (int64_t cols : {64, 50, 13}) {
      CAPTURE(B.row_stride);
      CAPTURE(cols);
      const size_t size = static_cast<size_t>(21 * 32 * ((cols + 31) / 32));
      const auto pack = [&](float* out) { cpu::detail::pack_b_panels(B, 3, 21, 2, cols, 32, out); };
      CHECK(packed(cpu::GemmIsa::avx512, size, pack) == packed(cpu::GemmIsa::generic, size, pack));
    }
}

TEST_CASE("sgemm splits K into equal blocks of at most kKc rows") {
  CHECK(cpu::k_block_rows(27) == 27);
  CHECK(cpu::k_block_rows(256) == 256);
  CHECK(cpu::k_block_rows(257) == 129);   // 129 + 128, not 256 + 1
  CHECK(cpu::k_block_rows(288) == 144);   // a 3×3 convolution over 32 channels
  CHECK(cpu::k_block_rows(1152) == 231);  // five blocks, the last 228 rows
}

TEST_CASE("sgemm writes only inside C's leading dimension") {
  Generator gen(2);
  const int64_t M = 10, N = 37, K = 19, ldc = 50;
  const auto a = random_values(M * K, gen), b = random_values(K * N, gen);
  std::vector<float> c(M * ldc, 7.0f), want(M * ldc, 7.0f);
  cpu::sgemm(M, N, K, {a.data(), K, 1}, {b.data(), N, 1}, c.data(), ldc, false);
  kernels::ref::gemm(M, N, K, {a.data(), K, 1}, {b.data(), N, 1}, want.data(), ldc, false);
  CHECK(max_rel(c, want) < 1e-5);
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j) CHECK(c[i * ldc + j] == 7.0f);
}

#ifdef PDYOLO_WITH_EIGEN
TEST_CASE("the Eigen alternative GEMM matches the reference") {
  Generator gen(3);
  const int64_t M = 33, N = 70, K = 45;
  const auto a = random_values(M * K, gen), b = random_values(K * N, gen);
  std::vector<float> got(M * N), want(M * N);
  kernels::eigen::sgemm(M, N, K, {a.data(), 1, M}, {b.data(), N, 1}, got.data(), N, false);
  kernels::ref::gemm(M, N, K, {a.data(), 1, M}, {b.data(), N, 1}, want.data(), N, false);
  CHECK(max_rel(got, want) < 1e-5);
}
#endif

// A square-kernel convolution: batch n, c × h × w in, oc out, kernel k, stride s, padding p, dilation d.
kernels::Conv2dGeometry conv_geometry(int64_t n, int64_t c, int64_t h, int64_t w, int64_t oc, int64_t k, int64_t s, int64_t p,
                                      int64_t d, int64_t groups) {
  kernels::Conv2dGeometry g;
  g.batch = n; g.in_channels = c; g.in_h = h; g.in_w = w; g.out_channels = oc;
  g.kernel_h = g.kernel_w = k; g.stride_h = g.stride_w = s; g.pad_h = g.pad_w = p;
  g.dilation_h = g.dilation_w = d; g.groups = groups;
  g.out_h = (h + 2 * p - d * (k - 1) - 1) / s + 1;
  g.out_w = (w + 2 * p - d * (k - 1) - 1) / s + 1;
  return g;
}

// The fast conv2d's forward and both gradients against the reference kernels (max relative error).
void check_conv2d_against_reference(const kernels::Conv2dGeometry& g, Generator& gen) {
  const auto x = random_values(g.batch * g.in_channels * g.in_h * g.in_w, gen);
  const auto w = random_values(g.out_channels * g.patch_size(), gen);
  const auto bias = random_values(g.out_channels, gen);
  const auto dy = random_values(g.batch * g.out_channels * g.out_plane(), gen);
  std::vector<float> y_ref(dy.size()), y_cpu(dy.size());
  kernels::ref::conv2d_forward(g, x.data(), w.data(), bias.data(), y_ref.data());
  cpu::conv2d_forward(g, x.data(), w.data(), bias.data(), y_cpu.data());
  CHECK(max_rel(y_cpu, y_ref) < 1e-5);
  std::vector<float> dx_ref(x.size()), dx_cpu(x.size(), 123.0f);
  kernels::ref::conv2d_backward_input(g, dy.data(), w.data(), dx_ref.data());
  cpu::conv2d_backward_input(g, dy.data(), w.data(), dx_cpu.data());
  CHECK(max_rel(dx_cpu, dx_ref) < 1e-5);
  std::vector<float> dw_ref(w.size()), dw_cpu(w.size(), 123.0f);
  kernels::ref::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw_cpu.data());
  CHECK(max_rel(dw_cpu, dw_ref) < 1e-5);
}

TEST_CASE("conv2d (packed-patch GEMMs, Winograd where it serves) matches the direct reference, forward and both gradients") {
  Generator gen(4);
  std::vector<kernels::Conv2dGeometry> cases;
  const auto make = conv_geometry;
  cases.push_back(make(1, 3, 17, 19, 8, 3, 2, 1, 1, 1));     // YOLOv7 stem shape, odd size
  cases.push_back(make(2, 16, 9, 9, 32, 1, 1, 0, 1, 1));     // 1×1 fast path
  cases.push_back(make(1, 12, 11, 7, 10, 3, 1, 1, 1, 2));    // groups
  cases.push_back(make(1, 6, 10, 10, 6, 3, 1, 2, 2, 6));     // depthwise, dilated
  cases.push_back(make(2, 5, 8, 9, 7, 5, 1, 2, 1, 1));       // 5×5
  cases.push_back(make(1, 4, 9, 9, 3, 1, 2, 0, 1, 1));       // strided 1×1 (not the fast path)
  cases.push_back(make(1, 4, 6, 5, 3, 1, 1, 1, 1, 1));       // padded 1×1: dx by col2im, not a convolution
  cases.push_back(make(1, 4, 13, 11, 5, 3, 3, 1, 1, 1));     // stride 3: col2im's three column phases
  cases.push_back(make(2, 4, 15, 14, 6, 3, 2, 2, 2, 2));     // stride 2, dilated, grouped, odd and even widths
  cases.push_back(make(1, 3, 12, 15, 4, 4, 2, 1, 1, 1));     // even kernel, stride 2: taps of both phases
  // Planes of 1024 and more: dx as a forward convolution of dy with flipped, transposed weights.
  cases.push_back(make(2, 3, 33, 34, 5, 3, 1, 1, 1, 1));     // padding 1
  cases.push_back(make(1, 4, 36, 32, 6, 3, 1, 2, 2, 2));     // dilated, grouped
  cases.push_back(make(1, 3, 35, 33, 4, 5, 1, 1, 1, 1));     // 5×5 with padding 1: dx pads by 3
  for (int i = 0; i < 6; ++i) {  // random geometries
    const int64_t groups = 1 + static_cast<int64_t>(gen.randint(2));
    const int64_t k = 1 + 2 * static_cast<int64_t>(gen.randint(2));
    cases.push_back(make(1 + static_cast<int64_t>(gen.randint(2)), groups * (1 + static_cast<int64_t>(gen.randint(6))),
                         k + 2 + static_cast<int64_t>(gen.randint(12)), k + 2 + static_cast<int64_t>(gen.randint(12)),
                         groups * (1 + static_cast<int64_t>(gen.randint(9))), k, 1 + static_cast<int64_t>(gen.randint(2)),
                         static_cast<int64_t>(gen.randint(2)), 1, groups));
  }
  for (cpu::GemmIsa isa : test::available_gemm_isas()) {
    test::IsaScope scope(isa);
    for (const auto& g : cases) {
      const std::string kernel = cpu::gemm_micro_kernel(isa).name;
      CAPTURE(kernel);
      CAPTURE(g.in_channels);
      CAPTURE(g.out_channels);
      CAPTURE(g.kernel_h);
      CAPTURE(g.groups);
      check_conv2d_against_reference(g, gen);
    }
  }
}

TEST_CASE("conv2d in training runs 3×3 stride-1 layers with Winograd, their input and weight gradients too (AVX-512)" * doctest::test_suite("requires_avx512")) {
  if (!cpu::gemm_isa_available(cpu::GemmIsa::avx512)) {
    return test::skip("this CPU has no AVX-512, where training's Winograd runs");
  }
  test::IsaScope scope(cpu::GemmIsa::avx512);
  const auto g = conv_geometry(2, 24, 34, 33, 40, 3, 1, 1, 1, 1);      // dx: a 3×3 stride-1 conv of the same plane
  const auto small = conv_geometry(2, 40, 9, 10, 24, 3, 1, 1, 1, 1);  // a small plane: dx is a convolution only for Winograd
  const auto strided = conv_geometry(2, 24, 34, 33, 40, 3, 2, 1, 1, 1);
  CHECK(cpu::conv_uses_winograd(g));
  CHECK(cpu::backward_input_as_convolution(g));
  CHECK(cpu::conv_uses_winograd(cpu::backward_input_geometry(small)));
  CHECK(cpu::backward_input_as_convolution(small));
  CHECK_FALSE(cpu::conv_uses_winograd(strided));
  Generator gen(21);
  const auto x = random_values(g.batch * g.in_channels * g.in_h * g.in_w, gen);
  const auto w = random_values(g.out_channels * g.patch_size(), gen), bias = random_values(g.out_channels, gen);
  const auto dy = random_values(g.batch * g.out_channels * g.out_plane(), gen);
  std::vector<float> y_ref(dy.size()), y(dy.size()), y_gemm(dy.size());
  kernels::ref::conv2d_forward(g, x.data(), w.data(), bias.data(), y_ref.data());
  cpu::conv2d_forward(g, x.data(), w.data(), bias.data(), y.data());
  CHECK(max_rel(y, y_ref) < 1e-4);  // Winograd's transforms round differently from the direct sums
  kernels::Conv2dGeometry image = g;
  image.batch = 1;
  cpu::PackedConvWeights direct;
  cpu::pack_conv_weights(image, w.data(), direct);
  for (int64_t n = 0; n < g.batch; ++n)
    cpu::conv2d_image_gemm(image, direct, x.data() + n * g.in_channels * g.in_h * g.in_w, bias.data(), {},
                           y_gemm.data() + n * g.out_channels * g.out_plane());
  CHECK(max_rel(y_gemm, y_ref) < 1e-5);
  CHECK(y != y_gemm);  // the sums are not the direct GEMM's: Winograd ran
  std::vector<float> dx_ref(x.size()), dx(x.size(), 123.0f);
  kernels::ref::conv2d_backward_input(g, dy.data(), w.data(), dx_ref.data());
  cpu::conv2d_backward_input(g, dy.data(), w.data(), dx.data());
  CHECK(max_rel(dx, dx_ref) < 1e-4);
  // The weight gradient, against the reference and the direct GEMM's (odd plane width: edge tiles)
  std::vector<float> dw_ref(w.size()), dw(w.size(), 123.0f), dw_gemm(w.size());
  kernels::ref::conv2d_backward_weight(g, x.data(), dy.data(), dw_ref.data());
  cpu::conv2d_backward_weight(g, x.data(), dy.data(), dw.data());
  CHECK(max_rel(dw, dw_ref) < 1e-4);
  cpu::conv2d_backward_weight_images(g, x.data(), dy.data(), 0, g.batch, dw_gemm.data());
  CHECK(max_rel(dw_gemm, dw_ref) < 1e-5);
  CHECK(dw != dw_gemm);  // Winograd ran
  // conv2d_forward packs every layer into the same buffers: switching between the routes must
  // leave nothing of the other route's packing in use
  for (const auto& layer : {strided, g, strided, small}) {
    CAPTURE(layer.in_h);
    const auto x2 = random_values(layer.batch * layer.in_channels * layer.in_h * layer.in_w, gen);
    const auto w2 = random_values(layer.out_channels * layer.patch_size(), gen);  // new weights: stale packing would show
    const auto dy2 = random_values(layer.batch * layer.out_channels * layer.out_plane(), gen);
    std::vector<float> want(dy2.size()), got(dy2.size()), dx_want(x2.size()), dx_got(x2.size(), 123.0f);
    kernels::ref::conv2d_forward(layer, x2.data(), w2.data(), bias.data(), want.data());
    cpu::conv2d_forward(layer, x2.data(), w2.data(), bias.data(), got.data());
    CHECK(max_rel(got, want) < 1e-4);
    kernels::ref::conv2d_backward_input(layer, dy2.data(), w2.data(), dx_want.data());
    cpu::conv2d_backward_input(layer, dy2.data(), w2.data(), dx_got.data());
    CHECK(max_rel(dx_got, dx_want) < 1e-4);
    std::vector<float> dw_want(w2.size()), dw_got(w2.size(), 123.0f);  // odd plane height on `small`
    kernels::ref::conv2d_backward_weight(layer, x2.data(), dy2.data(), dw_want.data());
    cpu::conv2d_backward_weight(layer, x2.data(), dy2.data(), dw_got.data());
    CHECK(max_rel(dw_got, dw_want) < 1e-4);
  }
}

TEST_CASE("conv2d over a batch split across threads (each thread whole images) matches the reference") {
  Generator gen(14);
  const kernels::Conv2dGeometry cases[] = {
      conv_geometry(6, 120, 19, 20, 9, 3, 1, 1, 1, 1),  // 1080 patch rows: two column chunks of dw's GEMM; 380 pixels: two K blocks
      conv_geometry(6, 5, 21, 17, 12, 3, 2, 1, 1, 1),   // stride 2: dx by GEMM + col2im per thread
      conv_geometry(6, 16, 33, 32, 8, 1, 1, 0, 1, 1),   // 1×1 reading x directly
      conv_geometry(6, 8, 32, 33, 6, 3, 1, 1, 1, 2),    // grouped, dx as a convolution
      conv_geometry(5, 7, 12, 11, 5, 3, 1, 1, 1, 1),    // a batch no thread count here divides but 1 and 5
  };
  const int threads_before = num_threads();
  for (int threads : {1, 2, 3}) {
    set_num_threads(threads);
    for (const auto& g : cases) {
      CAPTURE(threads);
      CAPTURE(g.batch);
      CAPTURE(g.in_channels);
      CAPTURE(g.stride_h);
      check_conv2d_against_reference(g, gen);
    }
  }
  set_num_threads(threads_before);
}

TEST_CASE("parallel elementwise kernels match the reference, with and without broadcasting") {
  Generator gen(5);
  auto f = [](float a, float b) { return a * 2.0f - b; };
  for (int i = 0; i < 12; ++i) {
    Shape shape;
    const int64_t dims = 1 + static_cast<int64_t>(gen.randint(4));
    for (int64_t d = 0; d < dims; ++d) shape.push_back(1 + static_cast<int64_t>(gen.randint(i < 6 ? 9 : 70)));
    Shape sa = shape, sb = shape;  // broadcast random axes of each operand
    for (int64_t d = 0; d < dims; ++d) {
      if (gen.randint(3) == 0) sa[d] = 1;
      else if (gen.randint(3) == 0) sb[d] = 1;
    }
    CAPTURE(shape_str(sa));
    CAPTURE(shape_str(sb));
    const Tensor a = Tensor::from_vector(random_values(shape_numel(sa), gen), sa);
    const Tensor b = Tensor::from_vector(random_values(shape_numel(sb), gen), sb);
    const Shape out = broadcast_shapes(sa, sb, "test");
    const Shape st_a = ops::detail::broadcast_strides(a, out), st_b = ops::detail::broadcast_strides(b, out);
    std::vector<float> want(shape_numel(out)), got(shape_numel(out));
    kernels::ref::broadcast_map2(out, a.data<float>(), st_a, b.data<float>(), st_b, want.data(), f);
    cpu::broadcast_map2(out, a.data<float>(), st_a, b.data<float>(), st_b, got.data(), f);
    CHECK(max_rel(got, want) < 1e-6);
  }
  const int64_t n = 100003;  // several parallel chunks and an odd tail
  const auto x = random_values(n, gen), y = random_values(n, gen), z = random_values(n, gen);
  std::vector<float> r1(n), c1(n);
  kernels::ref::map1(n, x.data(), r1.data(), [](float v) { return std::tanh(v); });
  cpu::map1(n, x.data(), c1.data(), [](float v) { return std::tanh(v); });
  CHECK(max_rel(c1, r1) < 1e-6);
  kernels::ref::map3(n, x.data(), y.data(), z.data(), r1.data(), [](float a, float b, float c) { return a * b + c; });
  cpu::map3(n, x.data(), y.data(), z.data(), c1.data(), [](float a, float b, float c) { return a * b + c; });
  CHECK(max_rel(c1, r1) < 1e-6);
}

TEST_CASE("whole ops agree between every backend (from the dispatch table) and the reference") {
  Generator gen(6);
  const Tensor x = Tensor::uniform({2, 8, 13, 11}, -1, 1, gen), w = Tensor::uniform({16, 8, 3, 3}, -1, 1, gen);
  const Tensor b = Tensor::uniform({16}, -1, 1, gen);
  auto run = [&](Backend backend) {
    BackendScope scope(backend);
    return silu(conv2d(x, w, b, Conv2dParams().padding(1)));
  };
  const Tensor ref_out = run(Backend::ref);
  REQUIRE(test::compute_backends().size() >= 2);
  for (Backend backend : test::compute_backends()) {
    CAPTURE(backend_name(backend));
    CHECK(test::max_rel_diff(run(backend), ref_out) < 1e-5);
  }
}

namespace {

// Forward value and the gradients of x, weight and bias under a fixed random upstream gradient.
struct BatchNormRun {
  Tensor y, dx, dw, db, running_mean, running_var;
};
// With via_concat the output is concatenated behind other channels first, so its gradient reaches
// the batch norm as a slice of concat's gradient (images further apart than their size).
BatchNormRun run_batch_norm_act(const Tensor& x0, const Tensor& w0, const Tensor& b0, bool training,
                                kernels::ActivationFn act, const Tensor& upstream, bool via_concat = false) {
  BatchNormRun r;
  const Tensor x = x0.clone().set_requires_grad(), w = w0.clone().set_requires_grad(), b = b0.clone().set_requires_grad();
  r.running_mean = Tensor::full({x0.shape()[1]}, 0.1);
  r.running_var = Tensor::full({x0.shape()[1]}, 0.8);
  r.y = batch_norm_act2d(x, w, b, r.running_mean, r.running_var, {training, 0.03f, 1e-3f}, act);
  if (via_concat) {
    const Tensor before = Tensor::ones(x0.shape());
    sum(concat({before, r.y}, 1) * concat({before, upstream}, 1)).backward();
  } else {
    sum(r.y * upstream).backward();
  }
  r.dx = x.grad(), r.dw = w.grad(), r.db = b.grad();
  return r;
}

}  // namespace

TEST_CASE("batch norm + activation: the fused cpu kernel matches the reference ops, forward and gradients (also read from a slice of concat's gradient)") {
  Generator gen(21);
  for (const Shape& shape : {Shape{2, 5, 7, 9}, Shape{3, 4, 16, 16}, Shape{1, 3, 1, 37}}) {
    const Tensor x = Tensor::uniform(shape, -2, 2, gen), upstream = Tensor::uniform(shape, -1, 1, gen);
    const Tensor w = Tensor::uniform({shape[1]}, 0.5f, 1.5f, gen), b = Tensor::uniform({shape[1]}, -0.5f, 0.5f, gen);
    for (Activation kind : {Activation::identity, Activation::relu, Activation::leaky_relu, Activation::silu})
      for (bool training : {true, false}) {
        const kernels::ActivationFn act{kind, 0.1f};
        BatchNormRun want;
        {
          BackendScope scope(Backend::ref);
          want = run_batch_norm_act(x, w, b, training, act, upstream);
        }
        for (bool via_concat : {false, true}) {
          const BatchNormRun got = run_batch_norm_act(x, w, b, training, act, upstream, via_concat);
          const std::string label = shape_str(shape) + " activation " + std::to_string(static_cast<int>(kind)) +
                                    (training ? " training" : " eval") + (via_concat ? ", through concat" : "");
          CAPTURE(label);
          CHECK(test::max_rel_diff(got.y, want.y) < 1e-5);
          CHECK(test::max_rel_diff(got.dx, want.dx) < 1e-4);
          CHECK(test::max_rel_diff(got.dw, want.dw) < 1e-4);
          CHECK(test::max_rel_diff(got.db, want.db) < 1e-4);
          CHECK(test::max_rel_diff(got.running_mean, want.running_mean) < 1e-6);
          CHECK(test::max_rel_diff(got.running_var, want.running_var) < 1e-5);
        }
      }
  }
}

// op(x) and the gradient of sum(op(x) · upstream) with respect to x, on the given backend.
template <class Op>
std::pair<Tensor, Tensor> value_and_grad(Backend backend, const Tensor& x, const Tensor& upstream, const Op& op) {
  BackendScope scope(backend);
  const Tensor xg = x.clone().set_requires_grad();
  const Tensor y = op(xg);
  sum(y * upstream).backward();
  return {y, xg.grad()};
}

TEST_CASE("separable max-pooling (training with argmax, inference without) equals the reference, ties included") {
  Generator gen(23);
  // planes, in h/w, out h/w, kernel h/w, stride h/w, pad h/w: SPP windows (the same-size route;
  // SPP's 13×13 on 10×10 planes, windows wider than the plane), strided, padded with a smaller
  // output (the general separable route), 2×2
  for (const kernels::Pool2dGeometry& g : {kernels::Pool2dGeometry{3, 20, 17, 20, 17, 13, 13, 1, 1, 6, 6},
                                           kernels::Pool2dGeometry{5, 10, 10, 10, 10, 13, 13, 1, 1, 6, 6},
                                           kernels::Pool2dGeometry{2, 9, 8, 5, 4, 3, 3, 2, 2, 1, 1},
                                           kernels::Pool2dGeometry{1, 11, 7, 11, 7, 5, 5, 1, 1, 2, 2},
                                           kernels::Pool2dGeometry{2, 11, 7, 9, 5, 5, 5, 1, 1, 1, 1},
                                           kernels::Pool2dGeometry{4, 10, 10, 5, 5, 2, 2, 2, 2, 0, 0}}) {
    CAPTURE(g.kernel_h);
    CAPTURE(g.out_h);
    // Values from a small set, so most windows hold their maximum more than once.
    const Tensor x = Tensor::uniform({g.planes * g.in_h * g.in_w}, 0, 4, gen);
    for (int64_t i = 0; i < x.numel(); ++i) x.data<float>()[i] = std::floor(x.data<float>()[i]);
    const size_t out = static_cast<size_t>(g.planes * g.out_h * g.out_w);
    std::vector<float> want_y(out), got_y(out);
    std::vector<int32_t> want_arg(out), got_arg(out, -5);
    kernels::ref::max_pool2d_forward(g, x.data<float>(), want_y.data(), want_arg.data());
    kernels::cpu::max_pool2d_forward(g, x.data<float>(), got_y.data(), got_arg.data());
    CHECK(got_y == want_y);
    CHECK(got_arg == want_arg);
    std::vector<float> inference_y(out);
    kernels::cpu::max_pool2d_inference(g, x.data<float>(), inference_y.data());
    CHECK(inference_y == want_y);
  }
}

TEST_CASE("parallel max-pool, upsample and reorg match the reference kernels, forward and backward") {
  Generator gen(22);
  const Tensor x = Tensor::uniform({3, 7, 19, 23}, -1, 1, gen);
  for (const MaxPool2dParams p : {MaxPool2dParams{2, 2, 0}, MaxPool2dParams{5, 1, 2}, MaxPool2dParams{13, 1, 6},
                                  MaxPool2dParams{3, 2, 1}}) {
    const auto pool = [&p](const Tensor& t) { return max_pool2d(t, p); };
    const Tensor upstream = Tensor::uniform(max_pool2d(x, p).shape(), -1, 1, gen);
    const auto want = value_and_grad(Backend::ref, x, upstream, pool), got = value_and_grad(Backend::cpu, x, upstream, pool);
    const int64_t kernel = p.kernel;
    CAPTURE(kernel);
    CHECK(test::max_rel_diff(got.first, want.first) == 0.0);
    CHECK(test::max_rel_diff(got.second, want.second) == 0.0);
  }
  for (int64_t scale : {2, 3}) {
    const auto upsample = [scale](const Tensor& t) { return upsample_nearest(t, scale); };
    const Tensor upstream = Tensor::uniform({3, 7, 19 * scale, 23 * scale}, -1, 1, gen);
    const auto want = value_and_grad(Backend::ref, x, upstream, upsample), got = value_and_grad(Backend::cpu, x, upstream, upsample);
    CAPTURE(scale);
    CHECK(test::max_rel_diff(got.first, want.first) == 0.0);
    CHECK(test::max_rel_diff(got.second, want.second) < 1e-6);
  }
  const Tensor even = Tensor::uniform({3, 7, 18, 22}, -1, 1, gen);  // reorg: planes of 9×11, one copy per element both ways
  const Tensor upstream = Tensor::uniform({3, 28, 9, 11}, -1, 1, gen);
  const auto want = value_and_grad(Backend::ref, even, upstream, reorg), got = value_and_grad(Backend::cpu, even, upstream, reorg);
  CHECK(test::max_rel_diff(got.first, want.first) == 0.0);
  CHECK(test::max_rel_diff(got.second, want.second) == 0.0);
}

namespace {

// An output buffer with guard values before and after it, to catch writes outside the output.
class Guarded {
 public:
  explicit Guarded(int64_t n) : data_(static_cast<size_t>(n + 2 * kGuard), kSentinel), n_(n) {}
  float* ptr() { return data_.data() + kGuard; }
  // True when nothing before or after the output was written.
  bool intact() const {
    for (int64_t i = 0; i < kGuard; ++i)
      if (data_[i] != kSentinel || data_[kGuard + n_ + i] != kSentinel) return false;
    return true;
  }

 private:
  static constexpr int64_t kGuard = 64;  // a full AVX-512 register and more, on either side
  static constexpr float kSentinel = -12345.0f;
  std::vector<float> data_;
  int64_t n_;
};

}  // namespace

TEST_CASE("every backend's kernels (from the dispatch table) write nothing outside their outputs") {
  Generator gen(31);
  auto values = [&](int64_t n) { return random_values(n, gen); };
  for (Backend backend : test::compute_backends()) {
    CAPTURE(backend_name(backend));
    // Elementwise, odd lengths (tails of every vector width).
    for (int64_t n : {1, 15, 17, 33, 1000, 40001}) {
      CAPTURE(n);
      const auto a = values(n), b = values(n), c = values(n);
      Guarded y1(n), y2(n), y3(n);
      Guarded y4(n);
      run_on(backend, OpKind::unary, [&](auto k) {
        k.unary(kernels::UnaryMap::silu, {}, n, a.data(), y1.ptr());
        k.unary_grad(kernels::UnaryMap::silu, {}, n, a.data(), b.data(), c.data(), y3.ptr());
        k.ternary(kernels::TernaryMap::bce_with_logits_dx, {2.5f}, n, a.data(), b.data(), c.data(), y4.ptr());
      });
      run_on(backend, OpKind::binary, [&](auto k) { k.binary(kernels::BinaryMap::add, {}, n, a.data(), b.data(), y2.ptr()); });
      CHECK(y4.intact());
      CHECK(y1.intact());
      CHECK(y2.intact());
      CHECK(y3.intact());
    }
    {
      const Shape shape{3, 5, 7};
      const auto a = values(3 * 5 * 7), b = values(7);
      Guarded y(3 * 5 * 7);
      run_on(backend, OpKind::binary,
             [&](auto k) { k.broadcast_binary(kernels::BinaryMap::mul, {}, shape, a.data(), Shape{35, 7, 1}, b.data(), Shape{0, 0, 1}, y.ptr()); });
      CHECK(y.intact());
    }
    {  // GEMM, odd sizes
      const int64_t M = 13, N = 37, K = 19;
      const auto a = values(M * K), b = values(K * N);
      Guarded c(M * N);
      run_on(backend, OpKind::matmul, [&](auto k) { k.gemm(M, N, K, {a.data(), K, 1}, {b.data(), N, 1}, c.ptr(), N); });
      CHECK(c.intact());
    }
    for (const kernels::Conv2dGeometry& g : {kernels::Conv2dGeometry{2, 5, 9, 11, 7, 3, 3, 9, 11, 1, 1, 1, 1, 1, 1, 1},
                                             kernels::Conv2dGeometry{1, 8, 20, 20, 16, 3, 3, 10, 10, 2, 2, 1, 1, 1, 1, 1},
                                             kernels::Conv2dGeometry{1, 16, 6, 6, 24, 1, 1, 6, 6, 1, 1, 0, 0, 1, 1, 1}}) {
      CAPTURE(g.kernel_h);
      CAPTURE(g.stride_h);
      const int64_t x_size = g.batch * g.in_channels * g.in_h * g.in_w, y_size = g.batch * g.out_channels * g.out_plane();
      const auto x = values(x_size), w = values(g.out_channels * g.patch_size()), bias = values(g.out_channels), dy = values(y_size);
      Guarded y(y_size), dx(x_size), dw(g.out_channels * g.patch_size());
      run_on(backend, OpKind::conv2d, [&](auto k) {
        k.conv2d_forward(g, x.data(), w.data(), bias.data(), y.ptr());
        k.conv2d_backward_input(g, dy.data(), w.data(), dx.ptr());
        k.conv2d_backward_weight(g, x.data(), dy.data(), dw.ptr());
      });
      CHECK(y.intact());
      CHECK(dx.intact());
      CHECK(dw.intact());
    }
    {  // batch norm + activation, forward and backward
      const int64_t N = 2, C = 3, plane = 37;
      const auto x = values(N * C * plane), weight = values(C), bias = values(C), dy = values(N * C * plane);
      Guarded mean(C), var(C), y(N * C * plane), dx(N * C * plane), dw(C), db(C);
      run_on(backend, OpKind::batch_norm2d, [&](auto k) {
        k.batch_norm_stats(N, C, plane, x.data(), mean.ptr(), var.ptr());
        k.batch_norm_act_forward(N, C, plane, x.data(), mean.ptr(), var.ptr(), weight.data(), bias.data(), 1e-3f,
                                 kernels::ActivationFn{Activation::silu, 0.1f}, y.ptr());
        k.batch_norm_act_backward(N, C, plane, x.data(), mean.ptr(), var.ptr(), weight.data(), bias.data(), 1e-3f,
                                  kernels::ActivationFn{Activation::silu, 0.1f}, dy.data(), C * plane, true, dx.ptr(), dw.ptr(), db.ptr());
      });
      for (const Guarded* out : {&mean, &var, &y, &dx, &dw, &db}) CHECK(out->intact());
    }
    for (const kernels::Pool2dGeometry& g : {kernels::Pool2dGeometry{3, 10, 13, 5, 6, 2, 2, 2, 2, 0, 0},
                                             kernels::Pool2dGeometry{3, 10, 13, 10, 13, 5, 5, 1, 1, 2, 2}}) {
      const int64_t in = g.planes * g.in_h * g.in_w, out = g.planes * g.out_h * g.out_w;
      const auto x = values(in), dy = values(out);
      Guarded y(out), dx(in);
      std::vector<int32_t> argmax(static_cast<size_t>(out));
      run_on(backend, OpKind::max_pool2d, [&](auto k) {
        k.max_pool2d_forward(g, x.data(), y.ptr(), argmax.data());
        k.max_pool2d_backward(g, dy.data(), argmax.data(), dx.ptr());
      });
      CHECK(y.intact());
      CHECK(dx.intact());
    }
    {
      const auto x = values(3 * 5 * 7), dy = values(3 * 10 * 14);
      Guarded y(3 * 10 * 14), dx(3 * 5 * 7);
      run_on(backend, OpKind::upsample_nearest, [&](auto k) {
        k.upsample_nearest_forward(3, 5, 7, 2, x.data(), y.ptr());
        k.upsample_nearest_backward(3, 5, 7, 2, dy.data(), dx.ptr());
      });
      CHECK(y.intact());
      CHECK(dx.intact());
    }
    {
      const auto x = values(2 * 3 * 6 * 10), dy = values(2 * 12 * 3 * 5);
      Guarded y(2 * 12 * 3 * 5), dx(2 * 3 * 6 * 10);
      run_on(backend, OpKind::reorg, [&](auto k) {
        k.reorg_forward(2, 3, 6, 10, x.data(), y.ptr());
        k.reorg_backward(2, 3, 6, 10, dy.data(), dx.ptr());
      });
      CHECK(y.intact());
      CHECK(dx.intact());
    }
  }
}
