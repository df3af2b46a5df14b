// Strided convolutions (stride ≥ 2, e.g. YOLOv7's 3×3 stride-2 downsampling), one output row at a
// time, without packing patches. At stride s, output column ow reads input column s·ow + u at tap
// kw (u = kw·dilation − pad). Split each input row into its s phases,
//   phase p, element i = x[s·(i − lead) + p]     (zero outside the row),
// and tap kw reads phase p = u mod s at element ow + ⌊u / s⌋ + lead: 32 consecutive output columns
// read 32 consecutive floats of one phase row. So the GEMM's B panel for a tile of the output row
// is K pointers into the phase rows of the input rows that output row reads (filled once per
// output row, kept in L2), and the 8×32 tile reads them directly: no patches gathered per panel,
// and bias and activation applied in registers before the tile's single store.
#pragma once
#include <algorithm>
#include <vector>

#include "pdyolo/kernels/cpu/sgemm.hpp"
#include "pdyolo/kernels/ref/conv2d.hpp"
#include "pdyolo/kernels/x86/conv_rows.hpp"

namespace pdyolo::kernels::cpu {

// Whether conv2d_image runs g by phase rows: a strided convolution without groups and with output
// rows of at least 128 columns, with the AVX-512 micro-kernel selected. One image, 2 threads, best
// of 30, against the packed-patch GEMM: 3×3 stride-2 3→32 at 640² 0.57×, 32→64 at 320² 0.86×,
// 64→128 at 320² 0.95×, 32→64 at 416² (rows of 208) 0.97×; but 64→128 at 160² (rows of 80) 1.09×
// and 256→256 at 40² 1.77×: the tiles of short rows are partly empty, and each row pays for its
// phases. (Stride-1 layers are served by the 1×1 path and Winograd.)
inline bool conv_uses_phase_rows(const Conv2dGeometry& g) {
#ifdef PDYOLO_X86_KERNELS
  const int64_t phase_row_bound = g.out_w + 64 + g.pad_w + g.kernel_w * g.dilation_w;  // ≥ PhaseRowLayout::length
  return gemm_isa() == GemmIsa::avx512 && g.stride_w >= 2 && g.groups == 1 && g.out_w >= 128 &&
         g.in_channels * g.kernel_h * g.stride_w * phase_row_bound < (int64_t{1} << 31);  // 32-bit offsets
#else
  (void)g;
  return false;
#endif
}

// Where the phase rows of one output row live in its buffer [C][KH][s][length], and where patch
// element k = (c, kh, kw) reads them.
struct PhaseRowLayout {
  int64_t phases = 1;  // the stride s
  int64_t lead = 0;    // zeros before each phase's first element: ⌈pad / s⌉ rounded up to 16 floats,
                       // so the taps at shift 0 load whole cache lines (0.88× the GEMM's time on
                       // 32→64 at 320², against 0.98× with ⌈pad / s⌉)
  int64_t length = 0;  // floats per phase row, covering every tile's 32 columns
  std::vector<int32_t> offset;  // [K]: start of patch element k's inputs for output column 0

  int64_t floats(const Conv2dGeometry& g) const { return g.in_channels * g.kernel_h * phases * length; }
};

// ⌊a / b⌋ for b > 0.
inline int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// The layout for g, reusing l's storage.
inline void set_phase_row_layout(const Conv2dGeometry& g, PhaseRowLayout& l) {
  l.phases = g.stride_w;
  l.lead = ((g.pad_w + l.phases - 1) / l.phases + 15) / 16 * 16;
  const int64_t last_shift = floor_div((g.kernel_w - 1) * g.dilation_w - g.pad_w, l.phases);
  const int64_t tile_columns = (g.out_w + 31) / 32 * 32;  // the last tile reads past the row
  l.length = (l.lead + std::max<int64_t>(last_shift, 0) + tile_columns + 15) / 16 * 16;
  l.offset.resize(static_cast<size_t>(g.patch_size()));
  for (int64_t c = 0, k = 0; c < g.in_channels; ++c)
    for (int64_t kh = 0; kh < g.kernel_h; ++kh)
      for (int64_t kw = 0; kw < g.kernel_w; ++kw, ++k) {
        const int64_t u = kw * g.dilation_w - g.pad_w, shift = floor_div(u, l.phases), phase = u - shift * l.phases;
        l.offset[static_cast<size_t>(k)] = static_cast<int32_t>(((c * g.kernel_h + kh) * l.phases + phase) * l.length + l.lead + shift);
      }
}

// The phases of one input row x_row [W] (null: a padding row, all zeros) into out [s][length].
inline void fill_phase_rows(const Conv2dGeometry& g, const PhaseRowLayout& l, const float* x_row, float* out) {
  const int64_t s = l.phases;
  if (!x_row) return std::fill(out, out + s * l.length, 0.0f);
  // Element i of phase p reads x_row[s·(i − lead) + p]; [i0, i1) are the elements whose whole group
  // of s inputs lies inside the row.
  const int64_t i0 = l.lead, i1 = std::min(l.length, l.lead + g.in_w / s);
  auto element = [&](int64_t i, int64_t p) {
    const int64_t iw = s * (i - l.lead) + p;
    return iw >= 0 && iw < g.in_w ? x_row[iw] : 0.0f;
  };
  for (int64_t p = 0; p < s; ++p) {
    float* phase = out + p * l.length;
    for (int64_t i = 0; i < i0; ++i) phase[i] = element(i, p);
    for (int64_t i = i1; i < l.length; ++i) phase[i] = element(i, p);
  }
#ifdef PDYOLO_X86_KERNELS
  if (s == 2) return x86::deinterleave_avx512(x_row, i1 - i0, out + i0, out + l.length + i0);
#endif
  for (int64_t p = 0; p < s; ++p)
    for (int64_t i = i0; i < i1; ++i) out[p * l.length + i] = x_row[s * (i - l.lead) + p];
}

// The phase rows of every (channel, kernel row) that output row oh reads, x [C, H, W] → buffer.
inline void fill_output_row_phases(const Conv2dGeometry& g, const PhaseRowLayout& layout, const float* x, int64_t oh,
                                   float* buffer) {
  const int64_t plane = g.in_h * g.in_w;
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t ih = g.in_row(oh, kh);
      const float* x_row = ih >= 0 && ih < g.in_h ? x + c * plane + ih * g.in_w : nullptr;
      fill_phase_rows(g, layout, x_row, buffer + (c * g.kernel_h + kh) * layout.phases * layout.length);
    }
}

// Asks for the input rows output row oh reads to be brought into L2 while this thread computes the
// row before it: the phase fill reads C·KH rows at once, too many streams for the hardware
// prefetcher (32→64 at 320², inputs out of cache: 0.92–0.94× the time).
inline void prefetch_output_row_inputs(const Conv2dGeometry& g, const float* x, int64_t oh) {
#ifdef PDYOLO_X86_KERNELS
  const int64_t plane = g.in_h * g.in_w, row_bytes = g.in_w * static_cast<int64_t>(sizeof(float));
  for (int64_t c = 0; c < g.in_channels; ++c)
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t ih = g.in_row(oh, kh);
      if (ih < 0 || ih >= g.in_h) continue;
      const char* row = reinterpret_cast<const char*>(x + c * plane + ih * g.in_w);
      for (int64_t b = 0; b < row_bytes; b += 64) _mm_prefetch(row + b, _MM_HINT_T1);
    }
#else
  (void)g, (void)x, (void)oh;
#endif
}

#ifdef PDYOLO_X86_KERNELS
// Output row oh of y [OC, OH·OW] from its phase rows (filled in `phases`), per K block, 32-column
// tile and 8-row strip: the GEMM's order of summation.
inline void conv_output_row(const Conv2dGeometry& g, const PackedA& w, const PhaseRowLayout& layout, const float* phases,
                            const float* bias, ActivationFn act, int64_t oh, float* y) {
  const int64_t K = w.K, N = g.out_plane(), strips = w.strips();
  const int64_t kb = k_block_rows(K), k_blocks = (K + kb - 1) / kb;
  for (int64_t p = 0; p < k_blocks; ++p) {
    const int64_t k0 = p * kb, kc = std::min(kb, K - k0);
    const bool accumulate = p > 0, finish = p + 1 == k_blocks;
    const int32_t* offset = layout.offset.data() + k0;
    for (int64_t ow0 = 0; ow0 < g.out_w; ow0 += 32) {
      const int64_t cols = std::min<int64_t>(32, g.out_w - ow0);
      for (int64_t s = 0; s < strips; ++s) {
        const float* a = w.strip(s, k0, kc);
        const float* strip_bias = bias ? bias + s * 8 : nullptr;
        float* tile = y + s * 8 * N + oh * g.out_w + ow0;
        if (cols > 16)
          x86::conv_rows_tile_avx512<2>(kc, a, phases + ow0, offset, accumulate, finish, strip_bias, act, w.M - s * 8, cols, tile, N);
        else  // a narrow last tile: half the width, half the wasted work
          x86::conv_rows_tile_avx512<1>(kc, a, phases + ow0, offset, accumulate, finish, strip_bias, act, w.M - s * 8, cols, tile, N);
      }
    }
  }
}
#endif

// y [OC, OH·OW] = act(w ⊛ x + bias) for one image, x [C, H, W] (conv_uses_phase_rows(g)); w packed
// by pack_a for the 8×32 micro-kernel. Each thread takes a band of output rows and fills each row's
// phase rows in its packing buffer (the GEMM's: no buffer of its own).
inline void conv2d_image_phase_rows(const Conv2dGeometry& g, const PackedA& w, const PhaseRowLayout& layout, const float* x,
                                    const float* bias, ActivationFn act, float* y) {
  PDYOLO_CHECK(conv_uses_phase_rows(g) && w.isa == GemmIsa::avx512 && w.M == g.out_channels && w.K == g.patch_size() &&
                   static_cast<int64_t>(layout.offset.size()) == w.K,
               "conv2d_image_phase_rows: needs a strided convolution, its weights packed for avx512-8x32 and its layout");
#ifdef PDYOLO_X86_KERNELS
  parallel_for(0, g.out_h, 1, [&](int64_t oh_begin, int64_t oh_end) {
    float* phases = detail::thread_pack_buffer_b(layout.floats(g));
    for (int64_t oh = oh_begin; oh < oh_end; ++oh) {
      fill_output_row_phases(g, layout, x, oh, phases);
      if (oh + 1 < oh_end) prefetch_output_row_inputs(g, x, oh + 1);
      conv_output_row(g, w, layout, phases, bias, act, oh, y);
    }
  });
#else
  (void)x, (void)bias, (void)act, (void)y;  // conv_uses_phase_rows is false: the check above threw
#endif
}

}  // namespace pdyolo::kernels::cpu
