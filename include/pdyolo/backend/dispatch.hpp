// The one dispatch point of every op: a table from (op, backend, dtype) to the kernels that run it.
//
// Each backend has a kernel set — a struct whose static functions are that backend's entry points,
// for f32 the same names and arguments in every set, all plain data (pointers, sizes, geometries,
// enums of maps: no C++ functor, so a device backend can implement them) — and the lists of op kinds
// it implements for f32 and for u8 levels.
// The table is built from those lists, so supports() says exactly what exists. An op calls
// select_backend() once and hands a generic lambda to run_on(), which calls it with the chosen
// backend's kernel set:
//
//   const Backend backend = select_backend(OpKind::max_pool2d, DType::f32);
//   run_on(backend, [&](auto k) { k.max_pool2d_forward(g, x, y, argmax); });
//
// The backward pass captures `backend` and runs on the same one. An unsupported combination is an
// error naming the op, the backend and the dtype.
#pragma once
#include <cstring>
#include <vector>

#include "pdyolo/backend/backend.hpp"
#include "pdyolo/core/shape.hpp"
#include "pdyolo/kernels/cpu/batch_norm.hpp"
#include "pdyolo/kernels/cpu/conv2d.hpp"
#include "pdyolo/kernels/cpu/elementwise.hpp"
#include "pdyolo/kernels/cpu/levels.hpp"
#include "pdyolo/kernels/cpu/pool.hpp"
#include "pdyolo/kernels/cpu/reorg.hpp"
#include "pdyolo/kernels/cpu/sgemm.hpp"
#include "pdyolo/kernels/elementwise_maps.hpp"
#include "pdyolo/kernels/ref/batch_norm.hpp"
#include "pdyolo/kernels/ref/conv2d.hpp"
#include "pdyolo/kernels/ref/elementwise.hpp"
#include "pdyolo/kernels/ref/gemm.hpp"
#include "pdyolo/kernels/ref/pool.hpp"
#include "pdyolo/kernels/ref/reduce.hpp"
#include "pdyolo/kernels/ref/reorg.hpp"

namespace pdyolo {

// The entry points every compute backend offers for the f32 op kinds it lists, and the planned f32
// executor's (graph::PlannedExecutor). u8 entry points are a backend's own: cpu's below; ref's u8
// path is quant/integer.hpp's IntegerReference.
// Scalar reference kernels (kernels/ref): the specification and the test oracle.
struct RefKernels {
  static constexpr Backend backend = Backend::ref;
  // The multiple of output channels its convolutions compute without padding (pruning rounds to it).
  static int64_t preferred_channel_multiple() { return 1; }
  // y = σ(x) over a row (the detect head's scores).
  static void sigmoid_row(const float* x, float* y, int64_t n) {
    for (int64_t i = 0; i < n; ++i) y[i] = kernels::sigmoid_of(x[i]);
  }
  static constexpr OpKind ops[] = {OpKind::binary, OpKind::unary,        OpKind::reduce,     OpKind::softmax,
                                   OpKind::matmul, OpKind::conv2d,       OpKind::batch_norm2d, OpKind::max_pool2d,
                                   OpKind::upsample_nearest, OpKind::reorg};
  // On u8 levels: the integer runtime's specification (quant/integer.hpp's IntegerReference, not
  // entry points of this set), which runs a quantized graph's convs, residual adds and level moves.
  // Activations are tables inside the convs' requantization.
  static constexpr OpKind u8_ops[] = {OpKind::conv2d, OpKind::binary, OpKind::max_pool2d, OpKind::upsample_nearest, OpKind::reorg};
  // Elementwise maps, named by plain data (kernels/elementwise_maps.hpp).
  static void unary(kernels::UnaryMap op, kernels::MapParams p, int64_t n, const float* x, float* y) {
    kernels::with_unary(op, p, [&](auto f) { kernels::ref::map1(n, x, y, f); });
  }
  static void unary_grad(kernels::UnaryMap op, kernels::MapParams p, int64_t n, const float* x, const float* y, const float* dy, float* dx) {
    kernels::with_unary_grad(op, p, [&](auto f) { kernels::ref::map3(n, x, y, dy, dx, f); });
  }
  static void binary(kernels::BinaryMap op, kernels::MapParams p, int64_t n, const float* a, const float* b, float* y) {
    kernels::with_binary(op, p, [&](auto f) { kernels::ref::map2(n, a, b, y, f); });
  }
  static void broadcast_binary(kernels::BinaryMap op, kernels::MapParams p, const Shape& shape, const float* a, const Shape& sa, const float* b,
                               const Shape& sb, float* y) {
    kernels::with_binary(op, p, [&](auto f) { kernels::ref::broadcast_map2(shape, a, sa, b, sb, y, f); });
  }
  static void ternary(kernels::TernaryMap op, kernels::MapParams p, int64_t n, const float* a, const float* b, const float* c, float* y) {
    kernels::with_ternary(op, p, [&](auto f) { kernels::ref::map3(n, a, b, c, y, f); });
  }
  static double sum_all(int64_t n, const float* x) { return kernels::ref::sum_all(n, x); }
  static void sum_axis(int64_t outer, int64_t n, int64_t inner, const float* x, float* y) { kernels::ref::sum_axis(outer, n, inner, x, y); }
  static void softmax(int64_t outer, int64_t n, int64_t inner, const float* x, float* y, bool log) {
    kernels::ref::softmax(outer, n, inner, x, y, log);
  }
  static void gemm(int64_t M, int64_t N, int64_t K, kernels::MatrixView A, kernels::MatrixView B, float* C, int64_t ldc) {
    kernels::ref::gemm(M, N, K, A, B, C, ldc, false);
  }
  static void conv2d_forward(const kernels::Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y) {
    kernels::ref::conv2d_forward(g, x, w, b, y);
  }
  static void conv2d_backward_input(const kernels::Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
    kernels::ref::conv2d_backward_input(g, dy, w, dx);
  }
  static void conv2d_backward_weight(const kernels::Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
    kernels::ref::conv2d_backward_weight(g, x, dy, dw);
  }
  static void batch_norm_stats(int64_t n, int64_t c, int64_t plane, const float* x, float* mean, float* var) {
    kernels::ref::batch_norm_stats(n, c, plane, x, mean, var);
  }
  template <class... Args> static void batch_norm_act_forward(Args... args) { kernels::ref::batch_norm_act_forward(args...); }
  template <class... Args> static void batch_norm_act_backward(Args... args) { kernels::ref::batch_norm_act_backward(args...); }
  static void max_pool2d_forward(const kernels::Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) {
    kernels::ref::max_pool2d_forward(g, x, y, argmax);
  }
  static void max_pool2d_backward(const kernels::Pool2dGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
    kernels::ref::max_pool2d_backward(g, dy, argmax, dx);
  }
  static void upsample_nearest_forward(int64_t planes, int64_t h, int64_t w, int64_t s, const float* x, float* y) {
    kernels::ref::upsample_nearest_forward(planes, h, w, s, x, y);
  }
  static void upsample_nearest_backward(int64_t planes, int64_t h, int64_t w, int64_t s, const float* dy, float* dx) {
    kernels::ref::upsample_nearest_backward(planes, h, w, s, dy, dx);
  }
  static void reorg_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y) { kernels::ref::reorg_forward(n, c, h, w, x, y); }
  static void reorg_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx) {
    kernels::ref::reorg_backward(n, c, h, w, dy, dx);
  }
  // Planned inference (graph::PlannedExecutor, graph/executor.hpp): a conv's weights and bias as
  // the kernels keep them (prepared once per graph), one image per call with the activation
  // applied to its output, pools without the argmax training keeps, and copies inside the
  // backend's memory (concat slices).
  struct PackedConv {
    std::vector<float> weight, bias;  // [OC, C/groups, KH, KW]; [OC] or empty
  };
  static bool conv_is_packed(const PackedConv& p) { return !p.weight.empty(); }
  static void pack_conv(const kernels::Conv2dGeometry& g, const float* w, const float* bias, PackedConv& out) {
    out.weight.assign(w, w + g.out_channels * g.patch_size());
    out.bias.assign(bias, bias ? bias + g.out_channels : bias);
  }
  static void conv2d_image(const kernels::Conv2dGeometry& g, const PackedConv& p, const float* x, kernels::ActivationFn act, float* y) {
    kernels::ref::conv2d_forward(g, x, p.weight.data(), p.bias.empty() ? nullptr : p.bias.data(), y);
    kernels::with_activation(act, [&](auto f, auto) {
      for (int64_t i = 0; i < g.out_channels * g.out_h * g.out_w; ++i) y[i] = f(y[i]);
    });
  }
  static void max_pool2d_inference(const kernels::Pool2dGeometry& g, const float* x, float* y) {
    std::vector<int32_t> argmax(static_cast<size_t>(g.planes * g.out_h * g.out_w));
    kernels::ref::max_pool2d_forward(g, x, y, argmax.data());
  }
  static void copy(void* dst, const void* src, size_t bytes) { std::memcpy(dst, src, bytes); }
};

// Fast CPU kernels (kernels/cpu, with x86 / NEON micro-kernels picked at run time). Reductions and
// softmax have none: they run on the reference kernels.
struct CpuKernels : RefKernels {
  static constexpr Backend backend = Backend::cpu;
  // The row block of the GEMM micro-kernel this CPU runs (8 with AVX-512 and NEON, 6 with AVX2, 4
  // for the portable kernel): a conv with 8k + 1 output channels computes a whole extra strip of 8.
  static int64_t preferred_channel_multiple() { return kernels::cpu::gemm_micro_kernel(kernels::cpu::gemm_isa()).mr; }
  static void sigmoid_row(const float* x, float* y, int64_t n) { kernels::cpu::sigmoid_row(x, y, n); }
  static constexpr OpKind ops[] = {OpKind::binary, OpKind::unary, OpKind::matmul, OpKind::conv2d, OpKind::batch_norm2d,
                                   OpKind::max_pool2d, OpKind::upsample_nearest, OpKind::reorg};
  // On u8 levels: the int8 executor (quant/int8_executor.hpp) with the entries below (the int8
  // direct convolutions of kernels/cpu/qconv.hpp and kernels/cpu/levels.hpp), bit-exact against the
  // reference's.
  static constexpr OpKind u8_ops[] = {OpKind::conv2d, OpKind::binary, OpKind::max_pool2d, OpKind::upsample_nearest, OpKind::reorg};
  static void unary(kernels::UnaryMap op, kernels::MapParams p, int64_t n, const float* x, float* y) {
    kernels::with_unary(op, p, [&](auto f) { kernels::cpu::map1(n, x, y, f); });
  }
  static void unary_grad(kernels::UnaryMap op, kernels::MapParams p, int64_t n, const float* x, const float* y, const float* dy, float* dx) {
    kernels::with_unary_grad(op, p, [&](auto f) { kernels::cpu::map3(n, x, y, dy, dx, f); });
  }
  static void binary(kernels::BinaryMap op, kernels::MapParams p, int64_t n, const float* a, const float* b, float* y) {
    kernels::with_binary(op, p, [&](auto f) { kernels::cpu::map2(n, a, b, y, f); });
  }
  static void broadcast_binary(kernels::BinaryMap op, kernels::MapParams p, const Shape& shape, const float* a, const Shape& sa, const float* b,
                               const Shape& sb, float* y) {
    kernels::with_binary(op, p, [&](auto f) { kernels::cpu::broadcast_map2(shape, a, sa, b, sb, y, f); });
  }
  static void ternary(kernels::TernaryMap op, kernels::MapParams p, int64_t n, const float* a, const float* b, const float* c, float* y) {
    kernels::with_ternary(op, p, [&](auto f) { kernels::cpu::map3(n, a, b, c, y, f); });
  }
  static void gemm(int64_t M, int64_t N, int64_t K, kernels::MatrixView A, kernels::MatrixView B, float* C, int64_t ldc) {
    kernels::cpu::sgemm(M, N, K, A, B, C, ldc, false);
  }
  static void conv2d_forward(const kernels::Conv2dGeometry& g, const float* x, const float* w, const float* b, float* y) {
    kernels::cpu::conv2d_forward(g, x, w, b, y);
  }
  static void conv2d_backward_input(const kernels::Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
    kernels::cpu::conv2d_backward_input(g, dy, w, dx);
  }
  static void conv2d_backward_weight(const kernels::Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
    kernels::cpu::conv2d_backward_weight(g, x, dy, dw);
  }
  static void batch_norm_stats(int64_t n, int64_t c, int64_t plane, const float* x, float* mean, float* var) {
    kernels::cpu::batch_norm_stats(n, c, plane, x, mean, var);
  }
  template <class... Args> static void batch_norm_act_forward(Args... args) { kernels::cpu::batch_norm_act_forward(args...); }
  template <class... Args> static void batch_norm_act_backward(Args... args) { kernels::cpu::batch_norm_act_backward(args...); }
  static void max_pool2d_forward(const kernels::Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) {
    kernels::cpu::max_pool2d_forward(g, x, y, argmax);
  }
  static void max_pool2d_backward(const kernels::Pool2dGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
    kernels::cpu::max_pool2d_backward(g, dy, argmax, dx);
  }
  static void upsample_nearest_forward(int64_t planes, int64_t h, int64_t w, int64_t s, const float* x, float* y) {
    kernels::cpu::upsample_nearest_forward(planes, h, w, s, x, y);
  }
  static void upsample_nearest_backward(int64_t planes, int64_t h, int64_t w, int64_t s, const float* dy, float* dx) {
    kernels::cpu::upsample_nearest_backward(planes, h, w, s, dy, dx);
  }
  static void reorg_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y) { kernels::cpu::reorg_forward(n, c, h, w, x, y); }
  static void reorg_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx) {
    kernels::cpu::reorg_backward(n, c, h, w, dy, dx);
  }
  // Planned inference (graph::PlannedExecutor): weights packed for the GEMM micro-kernel this CPU
  // runs now (again when a test selects another), one image per call, bias and activation applied
  // to each output tile.
  struct PackedConv {
    kernels::cpu::PackedConvWeights weights;
    std::vector<float> bias;  // [OC] or empty
  };
  static bool conv_is_packed(const PackedConv& p) { return p.weights.packed_for(kernels::cpu::gemm_isa()); }
  static void pack_conv(const kernels::Conv2dGeometry& g, const float* w, const float* bias, PackedConv& out) {
    kernels::cpu::pack_conv_weights_with_winograd(g, w, out.weights);
    out.bias.assign(bias, bias ? bias + g.out_channels : bias);
  }
  static void conv2d_image(const kernels::Conv2dGeometry& g, const PackedConv& p, const float* x, kernels::ActivationFn act, float* y) {
    kernels::cpu::conv2d_image(g, p.weights, x, p.bias.empty() ? nullptr : p.bias.data(), act, y);
  }
  // u8 levels in NHWC, one image per call (quant::Int8Executor): the quantized conv into plain-data
  // outputs (kernels/cpu/qconv.hpp), and the steps that move or add levels (kernels/cpu/levels.hpp).
  static void qconv2d(const kernels::cpu::U8Image& x, const kernels::cpu::QConvGeometry& g, const kernels::cpu::PackedQConvWeights& w,
                      const kernels::cpu::QConvOutput& out, kernels::cpu::QconvIsa isa) {
    kernels::cpu::qconv2d(x, g, w, out, isa);
  }
  static void max_pool2d_levels(const kernels::Pool2dGeometry& g, const kernels::cpu::U8Image& x, const kernels::cpu::U8Image& y) {
    kernels::cpu::max_pool2d_levels(g, x, y);
  }
  static void upsample_nearest_levels(int64_t channels, int64_t out_h, int64_t out_w, int64_t scale, const kernels::cpu::U8Image& x,
                                      const kernels::cpu::U8Image& y) {
    kernels::cpu::upsample_nearest_levels(channels, out_h, out_w, scale, x, y);
  }
  static void reorg_levels(int64_t channels, int64_t h, int64_t w, const kernels::cpu::U8Image& x, const kernels::cpu::U8Image& y) {
    kernels::cpu::reorg_levels(channels, h, w, x, y);
  }
  static void copy_levels(int64_t channels, int64_t h, int64_t w, const kernels::cpu::U8Image& x, const kernels::cpu::U8Image& y) {
    kernels::cpu::copy_levels(channels, h, w, x, y);
  }
  static void add_levels(int64_t channels, int64_t h, int64_t w, const kernels::cpu::U8Image* x, int64_t count, int32_t in_zero,
                         quant::Multiplier m, int32_t out_zero, const kernels::cpu::U8Image& y) {
    kernels::cpu::add_levels(channels, h, w, x, count, in_zero, m, out_zero, y);
  }
  static void max_pool2d_inference(const kernels::Pool2dGeometry& g, const float* x, float* y) {
    kernels::cpu::max_pool2d_inference(g, x, y);
  }
};

// ---- the table ----------------------------------------------------------------------------------

struct KernelEntry {
  OpKind op;
  Backend backend;
  DType dtype;
};

// Every (op, backend, dtype) that has kernels: the kernel sets' op lists (f32 and u8), and copies,
// which are core's strided loops (core/tensor.hpp) for every dtype on both host backends. No CUDA
// kernel is registered yet.
inline const std::vector<KernelEntry>& kernel_table() {
  static const std::vector<KernelEntry> table = [] {
    std::vector<KernelEntry> t;
    for (Backend b : {Backend::ref, Backend::cpu})
      for (DType d : {DType::f32, DType::f16, DType::i8, DType::u8, DType::i32, DType::i64}) t.push_back({OpKind::copy, b, d});
    for (OpKind op : RefKernels::ops) t.push_back({op, Backend::ref, DType::f32});
    for (OpKind op : RefKernels::u8_ops) t.push_back({op, Backend::ref, DType::u8});
    for (OpKind op : CpuKernels::ops) t.push_back({op, Backend::cpu, DType::f32});
    for (OpKind op : CpuKernels::u8_ops) t.push_back({op, Backend::cpu, DType::u8});
    return t;
  }();
  return table;
}

inline bool supports(OpKind op, Backend backend, DType dtype) {
  for (const KernelEntry& e : kernel_table())
    if (e.op == op && e.backend == backend && e.dtype == dtype) return true;
  return false;
}

// The preferred backend if it has the op for this dtype, else the reference kernels.
inline Backend select_backend(OpKind op, DType dtype) {
  if (supports(op, preferred_backend(), dtype)) return preferred_backend();
  PDYOLO_CHECK(supports(op, Backend::ref, dtype), op_kind_name(op), ": no kernel for backend ", backend_name(preferred_backend()),
               " or ref with dtype ", dtype_name(dtype), " (compute ops run on f32; convert with .to(DType::f32))");
  return Backend::ref;
}

// The multiple of output channels `backend`'s convolutions compute without padding: what pruning
// rounds channel counts to (the CUDA backend registers no kernel yet: 1).
inline int64_t preferred_channel_multiple(Backend backend) {
  switch (backend) {
    case Backend::ref: return RefKernels::preferred_channel_multiple();
    case Backend::cpu: return CpuKernels::preferred_channel_multiple();
    case Backend::cuda: return 1;
  }
  return 1;
}

// Calls fn with the kernel set of `backend` (which must hold `op`).
template <class Fn>
decltype(auto) run_on(Backend backend, OpKind op, Fn&& fn) {
  PDYOLO_CHECK(supports(op, backend, DType::f32), op_kind_name(op), ": backend ", backend_name(backend), " has no kernel for dtype f32");
  if (backend == Backend::cpu) return fn(CpuKernels{});
  return fn(RefKernels{});
}

}  // namespace pdyolo
