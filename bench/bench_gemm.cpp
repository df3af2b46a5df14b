// SGEMM and conv2d throughput at the shapes of yolov7-tiny's convolutions at 640×640:
// M = output channels, N = output H·W, K = input channels · k · k (one image).
// Ours (packed AVX-512/AVX2 micro-kernels) vs Eigen 3.4 vs the scalar reference, 2 threads.
//   ./bench_gemm --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include "pdyolo/kernels/eigen/sgemm.hpp"
#include "pdyolo/pdyolo.hpp"
#ifdef PDYOLO_WITH_EIGEN
#include <Eigen/Core>
#endif

using namespace pdyolo;

namespace {

struct LayerShape {
  const char* name;
  int64_t M, N, K;
};

// Distinct (OC, H·W, IC·k²) of yolov7-tiny's convolutions at 640 (layer indices of the official cfg).
const LayerShape kShapes[] = {
    {"L0 3x3s2 3-32 @320", 32, 320 * 320, 27},
    {"L1 3x3s2 32-64 @160", 64, 160 * 160, 288},
    {"L2 1x1 64-32 @160", 32, 160 * 160, 64},
    {"L4 3x3 32-32 @160", 32, 160 * 160, 288},
    {"L7 1x1 128-64 @160", 64, 160 * 160, 128},
    {"L11 3x3 64-64 @80", 64, 80 * 80, 576},
    {"L14 1x1 256-128 @80", 128, 80 * 80, 256},
    {"L18 3x3 128-128 @40", 128, 40 * 40, 1152},
    {"L25 3x3 256-256 @20", 256, 20 * 20, 2304},
    {"L28 1x1 1024-512 @20", 512, 20 * 20, 1024},
    {"L76 3x3 256-512 @20", 512, 20 * 20, 2304},
    {"L77 1x1 128-255 @80", 255, 80 * 80, 128},
};

enum class Impl { ours, eigen, ref };

void run_gemm(benchmark::State& state, Impl impl, LayerShape s) {
  Generator gen(0);
  const Tensor a = Tensor::uniform({s.M, s.K}, -1, 1, gen), b = Tensor::uniform({s.K, s.N}, -1, 1, gen);
  Tensor c = Tensor::zeros({s.M, s.N});
  const kernels::MatrixView A{a.data<float>(), s.K, 1}, B{b.data<float>(), s.N, 1};
  for (auto _ : state) {
    switch (impl) {
      case Impl::ours: kernels::cpu::sgemm(s.M, s.N, s.K, A, B, c.data<float>(), s.N, false); break;
#ifdef PDYOLO_WITH_EIGEN
      case Impl::eigen: kernels::eigen::sgemm(s.M, s.N, s.K, A, B, c.data<float>(), s.N, false); break;
#endif
      case Impl::ref: kernels::ref::gemm(s.M, s.N, s.K, A, B, c.data<float>(), s.N, false); break;
      default: state.SkipWithError("not built with Eigen"); return;
    }
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * s.M * s.N * s.K, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

void run_square(benchmark::State& state, Impl impl) {
  const int64_t n = state.range(0);
  run_gemm(state, impl, {"square", n, n, n});
}

struct ConvLayer {
  const char* name;
  int64_t c, h, oc, k, s;
};

const ConvLayer kConvs[] = {
    {"L0 3x3s2 3-32 @640", 3, 640, 32, 3, 2},  {"L1 3x3s2 32-64 @320", 32, 320, 64, 3, 2},
    {"L4 3x3 32-32 @160", 32, 160, 32, 3, 1},  {"L14 1x1 256-128 @80", 256, 80, 128, 1, 1},
    {"L18 3x3 128-128 @40", 128, 40, 128, 3, 1}, {"L76 3x3 256-512 @20", 256, 20, 512, 3, 1},
};

void run_conv(benchmark::State& state, ConvLayer l) {
  Generator gen(0);
  const Tensor x = Tensor::uniform({1, l.c, l.h, l.h}, -1, 1, gen), w = Tensor::uniform({l.oc, l.c, l.k, l.k}, -1, 1, gen);
  const Tensor b = Tensor::uniform({l.oc}, -1, 1, gen);
  const Conv2dParams p = Conv2dParams().stride(l.s).padding(l.k / 2);
  NoGradGuard no_grad;
  int64_t out = 0;
  for (auto _ : state) {
    Tensor y = conv2d(x, w, b, p);
    out = y.shape()[2];
    benchmark::DoNotOptimize(y.data<float>());
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * l.oc * out * out * l.c * l.k * l.k,
                                                benchmark::Counter::kIsIterationInvariantRate, benchmark::Counter::kIs1000);
}

// One image through conv2d_image's two routes for 3×3 stride-1 layers, weights packed once,
// LeakyReLU fused: Winograd F(2×2, 3×3) against the packed-patch GEMM. GFLOP/s counts the direct
// convolution's multiply-adds for both.
enum class ConvRoute { winograd, gemm };
void run_conv_route(benchmark::State& state, ConvLayer l, ConvRoute route) {
  const kernels::Conv2dGeometry g{1, l.c, l.h, l.h, l.oc, 3, 3, l.h, l.h, 1, 1, 1, 1, 1, 1, 1};
  if (route == ConvRoute::winograd && !kernels::cpu::conv_uses_winograd(g)) return state.SkipWithError("no Winograd on this CPU");
  Generator gen(0);
  const Tensor x = Tensor::uniform({l.c, l.h, l.h}, -1, 1, gen), w = Tensor::uniform({l.oc, l.c, 3, 3}, -1, 1, gen);
  const Tensor b = Tensor::uniform({l.oc}, -1, 1, gen);
  Tensor y = Tensor::empty({l.oc, l.h, l.h});
  kernels::cpu::PackedConvWeights packed;
  if (route == ConvRoute::winograd) kernels::cpu::pack_conv_weights_with_winograd(g, w.data<float>(), packed);
  else kernels::cpu::pack_conv_weights(g, w.data<float>(), packed);
  const kernels::ActivationFn act{Activation::leaky_relu, 0.1f};
  for (auto _ : state) {
    if (route == ConvRoute::winograd) kernels::cpu::conv2d_image_winograd(g, packed.winograd, x.data<float>(), b.data<float>(), act, y.data<float>());
    else kernels::cpu::conv2d_image_gemm(g, packed, x.data<float>(), b.data<float>(), act, y.data<float>());
    benchmark::ClobberMemory();
  }
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * l.oc * l.h * l.h * l.c * 9, benchmark::Counter::kIsIterationInvariantRate,
                                                benchmark::Counter::kIs1000);
}

}  // namespace

int main(int argc, char** argv) {
  set_num_threads(2);
#ifdef PDYOLO_WITH_EIGEN
  Eigen::setNbThreads(2);
#endif
  for (const LayerShape& s : kShapes) {
    benchmark::RegisterBenchmark((std::string("gemm/ours/") + s.name).c_str(), run_gemm, Impl::ours, s)->UseRealTime()->Unit(benchmark::kMillisecond);
#ifdef PDYOLO_WITH_EIGEN
    benchmark::RegisterBenchmark((std::string("gemm/eigen/") + s.name).c_str(), run_gemm, Impl::eigen, s)->UseRealTime()->Unit(benchmark::kMillisecond);
#endif
  }
  for (Impl impl : {Impl::ours, Impl::eigen}) {
    const char* name = impl == Impl::ours ? "gemm/ours/square" : "gemm/eigen/square";
    benchmark::RegisterBenchmark(name, run_square, impl)->Arg(2048)->UseRealTime()->Unit(benchmark::kMillisecond);
  }
  // The scalar reference is slow: one shape, one iteration, to show the distance.
  benchmark::RegisterBenchmark("gemm/ref/L18 3x3 128-128 @40", run_gemm, Impl::ref, kShapes[7])
      ->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
  for (const ConvLayer& l : kConvs)
    benchmark::RegisterBenchmark((std::string("conv2d/ours/") + l.name).c_str(), run_conv, l)->UseRealTime()->Unit(benchmark::kMillisecond);
  const ConvLayer stride_one[] = {
      {"L4 3x3 32-32 @160", 32, 160, 32, 3, 1},   {"L11 3x3 64-64 @80", 64, 80, 64, 3, 1},
      {"L18 3x3 128-128 @40", 128, 40, 128, 3, 1}, {"L25 3x3 256-256 @20", 256, 20, 256, 3, 1},
      {"L74 3x3 64-128 @80", 64, 80, 128, 3, 1},  {"L76 3x3 256-512 @20", 256, 20, 512, 3, 1},
  };
  for (const ConvLayer& l : stride_one)
    for (ConvRoute route : {ConvRoute::winograd, ConvRoute::gemm})
      benchmark::RegisterBenchmark((std::string(route == ConvRoute::winograd ? "conv3x3/winograd/" : "conv3x3/gemm/") + l.name).c_str(),
                                   run_conv_route, l, route)->UseRealTime()->Unit(benchmark::kMillisecond);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
}
