// AVX-512 packing of convolution patches into the 32-column GEMM panels of the 8×32 micro-kernel
// (the implicit im2col of kernels/cpu/conv2d.hpp, same output, vectorised).
//
// Every row k = (c, kh, kw) of a panel reads the same 32 output positions; only the channel plane
// and the tap's shift change. So for each panel the lanes are resolved once per tap: which input
// element each of the 32 columns reads, and which columns fall in the padding. Each packed row is
// then two 16-lane reads from the channel's plane (see TapLanes): masked loads and a permute at
// strides 1 and 2, a masked gather otherwise. Padding lanes and the columns past the chunk are 0.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "pdyolo/kernels/cpu/cpu_features.hpp"
#include "pdyolo/kernels/ref/conv2d.hpp"
#include "pdyolo/kernels/x86/gemm_pack.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// The lanes of one output row that read the image at stride s ≤ 2: they read the elements
// start, start + s, … of one input row, which lie in the span of at most 32 elements from start,
// loaded as two masked vectors (never past the span) and picked into place with one permute.
struct LaneRun {
  __mmask16 lanes = 0;          // the run's lanes (consecutive)
  __mmask16 low = 0, high = 0;  // elements of the span in the first / second 16 from start
  int32_t start = 0;            // input offset read by the run's first lane
  int32_t pick[16] = {};        // per lane: element of the span (0–31)
};

// Where 16 lanes of a panel read one tap of a channel plane: as one plain load when they read 16
// consecutive elements, as at most two runs when they span at most two output rows at stride 1 or
// 2, otherwise (larger strides, narrower rows) with a gather.
struct TapLanes {
  int32_t index[16];  // element offset inside the plane (0 where the lane is padding)
  __mmask16 inside;   // lanes that read the image
  enum class Read { whole, runs, gather } read;
  LaneRun run[2];
};

// The run of `lanes` (consecutive, inside the image, one output row) at the given stride.
inline LaneRun make_lane_run(__mmask16 lanes, const int32_t* index, int64_t stride) {
  LaneRun r;
  r.lanes = lanes;
  if (!lanes) return r;
  const int first = __builtin_ctz(lanes), count = __builtin_popcount(lanes);
  const int64_t span = stride * (count - 1) + 1;  // ≤ 31 elements
  r.start = index[first];
  r.low = first_lanes(span);
  r.high = span > 16 ? first_lanes(span - 16) : 0;
  for (int l = first; l < first + count; ++l) r.pick[l] = static_cast<int32_t>(stride * (l - first));
  return r;
}

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
  const bool in_runs = g.stride_w <= 2 && row_lanes[2] == 0;
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
      for (int r = 0; r < 2; ++r)
        lane.run[r] = make_lane_run(in_runs ? static_cast<__mmask16>(row_lanes[r] & inside) : 0, lane.index, g.stride_w);
      const bool whole = in_runs && g.stride_w == 1 && lane.run[0].lanes == 0xFFFF;
      lane.read = whole ? TapLanes::Read::whole : in_runs ? TapLanes::Read::runs : TapLanes::Read::gather;
    }
}

// One packed half-row: the 16 lanes of `lanes` read from channel plane x_c.
__attribute__((target("avx512f"))) inline __m512 read_tap_lanes(const TapLanes& lanes, const float* x_c) {
  if (lanes.read == TapLanes::Read::whole) return _mm512_loadu_ps(x_c + lanes.run[0].start);
  if (lanes.read == TapLanes::Read::gather)
    return _mm512_mask_i32gather_ps(_mm512_setzero_ps(), lanes.inside, _mm512_loadu_si512(lanes.index), x_c, 4);
  __m512 v = _mm512_setzero_ps();
  for (const LaneRun& r : lanes.run) {
    if (!r.lanes) continue;
    const float* src = x_c + r.start;
    const __m512 low = _mm512_maskz_loadu_ps(r.low, src);
    const __m512 high = r.high ? _mm512_maskz_loadu_ps(r.high, src + 16) : _mm512_setzero_ps();
    v = _mm512_mask_blend_ps(r.lanes, v, _mm512_permutex2var_ps(low, _mm512_loadu_si512(r.pick), high));
  }
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

}  // namespace pdyolo::kernels::x86
#endif
