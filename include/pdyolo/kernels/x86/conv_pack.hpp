// AVX-512 packing of convolution patches into the 32-column GEMM panels of the 8×32 micro-kernel
// (the implicit im2col of kernels/cpu/conv2d.hpp, same output, vectorised).
//
// Every row k = (c, kh, kw) of a panel reads the same 32 output positions; only the channel plane
// and the tap's shift change. So for each panel the lanes are resolved once per tap: which input
// element each of the 32 columns reads, and which columns fall in the padding. Each packed row is
// then two 16-lane reads from the channel's plane (see TapLanes): loads of consecutive elements at
// stride 1, a masked gather otherwise. Padding lanes and the columns past the chunk are 0.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "pdyolo/kernels/ref/conv2d.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// Where 16 lanes of a panel read one tap of a channel plane. At stride 1 the lanes of one output
// row read consecutive input elements, so a half-panel spanning at most two output rows is read
// with at most two expanding loads (each fills its lanes from consecutive elements); otherwise
// (stride > 1, narrower rows) with a gather.
struct TapLanes {
  int32_t index[16];      // element offset inside the plane (0 where the lane is padding)
  __mmask16 inside;       // lanes that read the image
  bool runs;              // read as the runs below, not gathered
  __mmask16 run_mask[2];  // lanes of each run (an output row's lanes that read the image)
  int32_t run_start[2];   // input offset read by the first lane of each run
};

// Resolves the lanes of columns [j0, j0 + 16) ∩ [.., col_end) of the output plane for every tap.
__attribute__((target("avx512f"))) inline void resolve_tap_lanes(const Conv2dGeometry& g, int64_t j0, int64_t col_end,
                                                                   TapLanes* lanes) {
  alignas(64) int32_t row0[16], col0[16];  // input row / column read at tap (0, 0)
  __mmask16 in_chunk = 0, row_lanes[3] = {0, 0, 0};  // lanes of the first, second and further output rows
  const int64_t first_row = j0 / g.out_w;
  for (int l = 0; l < 16; ++l) {
    const int64_t j = j0 + l, oh = j / g.out_w, ow = j % g.out_w;
    row0[l] = static_cast<int32_t>(oh * g.stride_h - g.pad_h);
    col0[l] = static_cast<int32_t>(ow * g.stride_w - g.pad_w);
    if (j < col_end) in_chunk = static_cast<__mmask16>(in_chunk | (1u << l));
    __mmask16& row = row_lanes[std::min<int64_t>(oh - first_row, 2)];
    row = static_cast<__mmask16>(row | (1u << l));
  }
  const bool unit_stride = g.stride_w == 1 && row_lanes[2] == 0;
  const __m512i rows = _mm512_load_si512(row0), cols = _mm512_load_si512(col0);
  const __m512i height = _mm512_set1_epi32(static_cast<int32_t>(g.in_h)), width = _mm512_set1_epi32(static_cast<int32_t>(g.in_w));
  const __m512i zero = _mm512_setzero_si512();
  for (int64_t kh = 0, t = 0; kh < g.kernel_h; ++kh)
    for (int64_t kw = 0; kw < g.kernel_w; ++kw, ++t) {
      const __m512i ih = _mm512_add_epi32(rows, _mm512_set1_epi32(static_cast<int32_t>(kh * g.dilation_h)));
      const __m512i iw = _mm512_add_epi32(cols, _mm512_set1_epi32(static_cast<int32_t>(kw * g.dilation_w)));
      __mmask16 inside = _mm512_mask_cmpge_epi32_mask(in_chunk, ih, zero);
      inside = _mm512_mask_cmplt_epi32_mask(inside, ih, height);
      inside = _mm512_mask_cmpge_epi32_mask(inside, iw, zero);
      inside = _mm512_mask_cmplt_epi32_mask(inside, iw, width);
      TapLanes& lane = lanes[t];
      _mm512_storeu_si512(lane.index, _mm512_maskz_add_epi32(inside, _mm512_mullo_epi32(ih, width), iw));
      lane.inside = inside;
      lane.runs = unit_stride;
      for (int r = 0; r < 2; ++r) {
        lane.run_mask[r] = static_cast<__mmask16>(row_lanes[r] & inside);
        lane.run_start[r] = lane.run_mask[r] ? lane.index[__builtin_ctz(lane.run_mask[r])] : 0;
      }
    }
}

// One packed half-row: the 16 lanes of `lanes` read from channel plane x_c.
__attribute__((target("avx512f"))) inline __m512 read_tap_lanes(const TapLanes& lanes, const float* x_c) {
  if (!lanes.runs) return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes.inside, _mm512_loadu_si512(lanes.index), x_c, 4);
  if (lanes.run_mask[0] == 0xFFFF) return _mm512_loadu_ps(x_c + lanes.run_start[0]);
  __m512 v = _mm512_maskz_expandloadu_ps(lanes.run_mask[0], x_c + lanes.run_start[0]);
  if (lanes.run_mask[1]) v = _mm512_mask_expandloadu_ps(v, lanes.run_mask[1], x_c + lanes.run_start[1]);
  return v;
}

// Packs B[k0 .. k0 + kc, col0 .. col0 + cols] of the convolution's patch matrix for one image and
// group, x_g [Cg, H, W], as ⌈cols / 32⌉ panels of kc rows × 32 floats (the layout of PackB).
// The plane must have fewer than 2³¹ elements (the gather indices are 32-bit).
__attribute__((target("avx512f"))) inline void pack_conv_panels_avx512(const Conv2dGeometry& g, const float* x_g, int64_t k0,
                                                                        int64_t kc, int64_t col0, int64_t cols, float* out) {
  const int64_t taps = g.kernel_h * g.kernel_w, plane = g.in_h * g.in_w, col_end = col0 + cols;
  thread_local std::vector<TapLanes> lanes;  // [tap][half], reused across calls
  lanes.resize(static_cast<size_t>(2 * taps));
  for (int64_t q = 0; q * 32 < cols; ++q) {
    float* panel = out + q * kc * 32;
    for (int half = 0; half < 2; ++half) resolve_tap_lanes(g, col0 + q * 32 + half * 16, col_end, lanes.data() + half * taps);
    int64_t c = k0 / taps, t = k0 % taps;
    for (int64_t k = 0; k < kc; ++k) {
      const float* x_c = x_g + c * plane;
      for (int half = 0; half < 2; ++half) {
        _mm512_storeu_ps(panel + k * 32 + half * 16, read_tap_lanes(lanes[static_cast<size_t>(half * taps + t)], x_c));
      }
      if (++t == taps) t = 0, ++c;
    }
  }
}

// Packs rows [k0, k0 + kc) and columns [col0, col0 + cols) of a row-major B (row stride ldb; a 1×1
// convolution's input) as 32-column panels, the last one zero-padded.
__attribute__((target("avx512f"))) inline void pack_rows_avx512(const float* b, int64_t ldb, int64_t k0, int64_t kc, int64_t col0,
                                                                 int64_t cols, float* out) {
  for (int64_t q = 0; q * 32 < cols; ++q) {
    const int64_t n = std::min<int64_t>(32, cols - q * 32);
    const __mmask16 low = n >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << n) - 1);
    const __mmask16 high = n >= 32 ? 0xFFFF : n > 16 ? static_cast<__mmask16>((1u << (n - 16)) - 1) : 0;
    const float* src = b + k0 * ldb + col0 + q * 32;
    float* panel = out + q * kc * 32;
    for (int64_t k = 0; k < kc; ++k, src += ldb) {
      _mm512_storeu_ps(panel + k * 32, _mm512_maskz_loadu_ps(low, src));
      _mm512_storeu_ps(panel + k * 32 + 16, high ? _mm512_maskz_loadu_ps(high, src + 16) : _mm512_setzero_ps());
    }
  }
}

}  // namespace pdyolo::kernels::x86
#endif
