// int8 convolution: int32 accumulators acc[o][p] = Σ_k w[o][k] · x_col[k][p] of s8 weights and u8
// input levels, as a GEMM over im2col columns (k = input channel × kernel row × kernel column of one
// group, p = output pixel), handed tile by tile to an epilogue that turns them into outputs
// (requantization, the activation table, the write into the consumer's layout).
//
//   weights  packed once (pack_qconv_weights): per group, 8-row panels [k4][8][4] (k padded to a
//            multiple of 4 with zero weights), plus each output channel's Σ_k w — what a zero
//            point costs: Σ_k (x − z)·w = Σ_k x·w − z·Σ_k w.
//   input    each task packs the im2col columns of 32 output pixels ([k4][32][4], the padding
//            holding the input's zero point z, so that it contributes (z − z)·w = 0), then runs
//            every 8-row panel of weights against them and hands each 8×32 tile to the epilogue.
//
// Tasks are (group, 32-pixel tile) pairs; the arithmetic is exact, so the result does not depend
// on the kernel, the thread count or the order. The micro-kernel is chosen at run time: AVX-512
// VNNI where the CPU has it, else portable C++.
#pragma once
#include <algorithm>
#include <functional>
#include <vector>

#include "pdyolo/core/error.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/x86/qgemm_ukernels.hpp"

namespace pdyolo::kernels::cpu {

inline void qgemm_ukernel_generic_8x32(int64_t kc4, const int8_t* a, const uint8_t* b, int32_t* c, int64_t ldc) {
  int32_t acc[kQgemmMr][kQgemmNr] = {};
  for (int64_t k = 0; k < kc4; ++k, a += kQgemmMr * 4, b += kQgemmNr * 4)
    for (int i = 0; i < kQgemmMr; ++i)
      for (int j = 0; j < kQgemmNr; ++j)
        for (int t = 0; t < 4; ++t) acc[i][j] += static_cast<int32_t>(a[i * 4 + t]) * static_cast<int32_t>(b[j * 4 + t]);
  for (int i = 0; i < kQgemmMr; ++i) std::copy(acc[i], acc[i] + kQgemmNr, c + i * ldc);
}

#ifdef PDYOLO_X86_KERNELS
inline bool cpu_has_avx512_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vnni");
  return has;
}
#else
inline bool cpu_has_avx512_vnni() { return false; }
#endif

enum class QgemmIsa { generic, avx512_vnni };

using QgemmMicroKernelFn = void (*)(int64_t kc4, const int8_t* a, const uint8_t* b, int32_t* c, int64_t ldc);

struct QgemmMicroKernel {
  const char* name;
  QgemmMicroKernelFn fn;
};

inline bool qgemm_isa_available(QgemmIsa isa) { return isa == QgemmIsa::generic || cpu_has_avx512_vnni(); }

inline QgemmMicroKernel qgemm_micro_kernel(QgemmIsa isa) {
  PDYOLO_CHECK(qgemm_isa_available(isa), "qconv: this CPU has no AVX-512 VNNI");
#ifdef PDYOLO_X86_KERNELS
  if (isa == QgemmIsa::avx512_vnni) return {"avx512-vnni 8x32", x86::qgemm_ukernel_vnni_8x32};
#endif
  return {"generic 8x32", qgemm_ukernel_generic_8x32};
}

// The fastest kernel this CPU has.
inline QgemmIsa best_qgemm_isa() { return cpu_has_avx512_vnni() ? QgemmIsa::avx512_vnni : QgemmIsa::generic; }

struct QConvGeometry {
  int64_t in_channels = 0, height = 0, width = 0;  // of the input
  int64_t out_channels = 0, kernel = 1, stride = 1, padding = 0, groups = 1;
  int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  int64_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  int64_t depth() const { return in_channels / groups * kernel * kernel; }  // k of one group
};

struct PackedQConvWeights {
  int64_t out_channels = 0, groups = 1, depth = 0, depth4 = 0, panels_per_group = 0;
  std::vector<int8_t> panels;         // [groups][panels_per_group][depth4][8][4]
  std::vector<int32_t> weight_sums;   // [out_channels] Σ_k w
};

// w [out, in / groups, k, k] s8.
inline PackedQConvWeights pack_qconv_weights(const int8_t* w, int64_t out_channels, int64_t depth, int64_t groups) {
  PDYOLO_CHECK(out_channels % groups == 0, "qconv: ", out_channels, " output channels in ", groups, " groups");
  PackedQConvWeights p;
  p.out_channels = out_channels, p.groups = groups, p.depth = depth, p.depth4 = (depth + 3) / 4;
  const int64_t per_group = out_channels / groups;
  p.panels_per_group = (per_group + kQgemmMr - 1) / kQgemmMr;
  p.panels.assign(static_cast<size_t>(groups * p.panels_per_group * p.depth4 * kQgemmMr * 4), 0);
  p.weight_sums.assign(static_cast<size_t>(out_channels), 0);
  for (int64_t o = 0; o < out_channels; ++o) {
    const int64_t g = o / per_group, row = o % per_group, panel = row / kQgemmMr, i = row % kQgemmMr;
    int8_t* dst = p.panels.data() + ((g * p.panels_per_group + panel) * p.depth4) * kQgemmMr * 4;
    for (int64_t k = 0; k < depth; ++k) {
      const int8_t v = w[o * depth + k];
      dst[(k / 4) * kQgemmMr * 4 + i * 4 + k % 4] = v;
      p.weight_sums[static_cast<size_t>(o)] += v;
    }
  }
  return p;
}

// What becomes of one finished tile: acc[i * ldc + j] for output channel first_channel + i and
// output pixel first_pixel + j (i < channels, j < pixels; pixels are in row-major output order).
using QConvEpilogue =
    std::function<void(int64_t first_channel, int64_t channels, int64_t first_pixel, int64_t pixels, const int32_t* acc, int64_t ldc)>;

// x: one image's u8 levels [in_channels, height, width]; input_zero: the level of 0 (the padding).
inline void qconv2d(const uint8_t* x, const QConvGeometry& g, const PackedQConvWeights& w, uint8_t input_zero, const QConvEpilogue& epilogue,
                    QgemmIsa isa = best_qgemm_isa()) {
  PDYOLO_CHECK(w.out_channels == g.out_channels && w.groups == g.groups && w.depth == g.depth(), "qconv: the packed weights are for another conv");
  const QgemmMicroKernelFn kernel = qgemm_micro_kernel(isa).fn;
  const int64_t oh = g.out_height(), ow = g.out_width(), pixels = oh * ow, tiles = (pixels + kQgemmNr - 1) / kQgemmNr;
  const int64_t in_per_group = g.in_channels / g.groups, out_per_group = g.out_channels / g.groups, kk = g.kernel * g.kernel;
  parallel_tasks(g.groups * tiles, [&](int64_t task) {
    const int64_t group = task / tiles, first_pixel = (task % tiles) * kQgemmNr, count = std::min(kQgemmNr, pixels - first_pixel);
    thread_local std::vector<uint8_t> columns;
    columns.assign(static_cast<size_t>(w.depth4 * kQgemmNr * 4), 0);
    for (int64_t j = 0; j < kQgemmNr; ++j) {  // im2col of this tile's pixels (pixels past the end: padding)
      const int64_t p = first_pixel + j, oy = p / ow, ox = p % ow;
      for (int64_t k = 0; k < w.depth; ++k) {
        const int64_t ci = group * in_per_group + k / kk, ky = (k % kk) / g.kernel, kx = k % g.kernel;
        const int64_t iy = oy * g.stride - g.padding + ky, ix = ox * g.stride - g.padding + kx;
        const bool inside = j < count && iy >= 0 && iy < g.height && ix >= 0 && ix < g.width;
        columns[static_cast<size_t>((k / 4) * kQgemmNr * 4 + j * 4 + k % 4)] = inside ? x[(ci * g.height + iy) * g.width + ix] : input_zero;
      }
    }
    int32_t acc[kQgemmMr * kQgemmNr];
    for (int64_t panel = 0; panel < w.panels_per_group; ++panel) {
      kernel(w.depth4, w.panels.data() + (group * w.panels_per_group + panel) * w.depth4 * kQgemmMr * 4, columns.data(), acc, kQgemmNr);
      const int64_t first_row = panel * kQgemmMr;
      epilogue(group * out_per_group + first_row, std::min(kQgemmMr, out_per_group - first_row), first_pixel, count, acc, kQgemmNr);
    }
  });
}

}  // namespace pdyolo::kernels::cpu
