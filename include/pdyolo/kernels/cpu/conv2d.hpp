// Fast conv2d as packed SGEMM, per image and group. The forward pass packs input patches straight
// into the GEMM panels (implicit im2col; a 1×1 convolution with stride 1 and no padding reads its
// input rows directly); 3×3 stride-1 layers run with Winograd F(2×2, 3×3) on AVX-512
// (kernels/cpu/winograd.hpp) and strided layers with long output rows by phase rows
// (kernels/cpu/conv_rows.hpp). The inference executor packs the weights once and also fuses the
// activation; training packs them each call. The weight gradient packs transposed patches the same
// way (Winograd's transforms where the forward runs Winograd), each thread summing its share of the
// batch; the input gradient is a forward convolution of dy where backward_input_as_convolution,
// else a GEMM summed back by col2im.
//
// Per image n and group g (Cg = in channels per group, OCg = out channels per group):
//   col [Cg·KH·KW, OH·OW]        input patches (zeros in the padding)
//   y_g [OCg, OH·OW]  = w_g [OCg, Cg·KH·KW] · col
//   dw_g             += dy_g · colᵀ
//   dcol              = w_gᵀ · dy_g, then col2im sums dcol back into dx
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "pdyolo/kernels/cpu/conv_rows.hpp"
#include "pdyolo/kernels/cpu/sgemm.hpp"
#include "pdyolo/kernels/cpu/window.hpp"
#include "pdyolo/kernels/cpu/winograd.hpp"
#include "pdyolo/kernels/ref/conv2d.hpp"
#include "pdyolo/kernels/x86/conv_pack.hpp"

namespace pdyolo::kernels::cpu {

inline bool conv_is_pointwise(const Conv2dGeometry& g) {
  return g.kernel_h == 1 && g.kernel_w == 1 && g.stride_h == 1 && g.stride_w == 1 && g.pad_h == 0 &&
         g.pad_w == 0;
}

// The output columns whose input column in_col(ow, kw) lies inside the image; the rest read padding.
inline ValidOutputs valid_columns(const Conv2dGeometry& g, int64_t kw) {
  return valid_outputs(g.in_w, g.out_w, g.stride_w, kw * g.dilation_w - g.pad_w);
}

// dx_g [Cg, H, W] = col2im(dcol [Cg·KH·KW, OH·OW]) (overwritten): each input element gets the sum
// of the patch entries that read it. Row by row, channels in parallel: the taps that read input
// row ih are summed into one buffer per column phase (iw mod stride), with contiguous loops, and
// the phases are then interleaved into the row, written once. (Scattering each tap into dx at
// the stride took about 40 % of the input gradient of yolov7-tiny's stride-2 layers.)
inline void col2im(const Conv2dGeometry& g, const float* dcol, float* dx_g) {
  const int64_t plane = g.out_plane(), S = g.stride_w, phase_len = (g.in_w + S - 1) / S;
  parallel_for(0, g.in_per_group(), 1, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> phases_here;
    std::vector<float>& phases = phases_here;  // [S][phase_len]: input column iw at phases[iw % S][iw / S]
    phases.resize(static_cast<size_t>(S * phase_len));
    for (int64_t c = lo; c < hi; ++c)
      for (int64_t ih = 0; ih < g.in_h; ++ih) {
        std::fill(phases.begin(), phases.end(), 0.0f);
        for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
          const int64_t from_top = ih + g.pad_h - kh * g.dilation_h;  // = oh · stride_h for the row that reads ih
          if (from_top < 0 || from_top % g.stride_h != 0 || from_top / g.stride_h >= g.out_h) continue;
          const int64_t oh = from_top / g.stride_h;
          for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
            const int64_t shift = kw * g.dilation_w - g.pad_w;  // iw = ow · S + shift
            const int64_t phase = ((shift % S) + S) % S, offset = (shift - phase) / S;  // iw = (ow + offset) · S + phase
            const int64_t len = (g.in_w - phase + S - 1) / S;  // columns of this phase
            float* dst = phases.data() + phase * phase_len;
            const float* src = dcol + ((c * g.kernel_h + kh) * g.kernel_w + kw) * plane + oh * g.out_w;
            const int64_t ow_end = std::min(g.out_w, len - offset);
            for (int64_t ow = std::max<int64_t>(0, -offset); ow < ow_end; ++ow) dst[ow + offset] += src[ow];
          }
        }
        float* row = dx_g + (c * g.in_h + ih) * g.in_w;
        if (S == 1) {
          std::copy(phases.begin(), phases.begin() + g.in_w, row);
        } else if (S == 2) {
          const float* even = phases.data();
          const float* odd = even + phase_len;
          for (int64_t j = 0; j < g.in_w / 2; ++j) row[2 * j] = even[j], row[2 * j + 1] = odd[j];
          if (g.in_w % 2) row[g.in_w - 1] = even[g.in_w / 2];
        } else {
          for (int64_t iw = 0; iw < g.in_w; ++iw) row[iw] = phases[(iw % S) * phase_len + iw / S];
        }
      }
  });
}

// Offsets of image n, group grp inside x, w, y.
struct ConvGroupOffsets {
  int64_t x, w, y;
};
inline ConvGroupOffsets conv_group_offsets(const Conv2dGeometry& g, int64_t n, int64_t grp) {
  return {(n * g.in_channels + grp * g.in_per_group()) * g.in_h * g.in_w,
          grp * g.out_per_group() * g.patch_size(),
          (n * g.out_channels + grp * g.out_per_group()) * g.out_plane()};
}

// Packs the GEMM panels of B[k0 .. k0+kc, col0 .. col0+cols] (see PackB) for one image and group
// straight from the input x_g [Cg, H, W] (row k = (c, kh, kw) of the patch, column j = (oh, ow)):
// the implicit im2col, so no column buffer is written and read back. Each
// packed row is a few runs of input row segments and padding zeros.
inline void pack_conv_panels(const Conv2dGeometry& g, const float* x_g, int64_t k0, int64_t kc, int64_t col0, int64_t cols,
                             int64_t nr, float* out) {
  const int64_t stride = g.stride_w, padded = (cols + nr - 1) / nr * nr;
  for (int64_t k = 0; k < kc; ++k) {
    const int64_t r = k0 + k;
    const int64_t kw = r % g.kernel_w, kh = (r / g.kernel_w) % g.kernel_h, c = r / (g.kernel_w * g.kernel_h);
    const float* in = x_g + c * g.in_h * g.in_w;
    const ValidOutputs v = valid_columns(g, kw);
    const int64_t offset = g.in_col(0, kw);
    int64_t oh = col0 / g.out_w, ow = col0 % g.out_w;
    for (int64_t j = 0; j < cols; oh += 1, ow = 0) {
      const int64_t end = std::min(g.out_w, ow + cols - j);  // this output row's columns in the chunk
      const int64_t ih = g.in_row(oh, kh);
      if (ih < 0 || ih >= g.in_h) {
        detail::put_packed_run(out, kc, nr, k, j, nullptr, 0, end - ow);
      } else {
        const float* src = in + ih * g.in_w + offset;
        const int64_t a = std::clamp(v.lo, ow, end), b = std::clamp(v.hi, a, end);
        detail::put_packed_run(out, kc, nr, k, j, nullptr, 0, a - ow);
        detail::put_packed_run(out, kc, nr, k, j + (a - ow), src + a * stride, stride, b - a);
        detail::put_packed_run(out, kc, nr, k, j + (b - ow), nullptr, 0, end - b);
      }
      j += end - ow;
    }
    detail::put_packed_run(out, kc, nr, k, cols, nullptr, 0, padded - cols);
  }
}

// Whether conv2d_image packs patches with the AVX-512 routine (kernels/x86/conv_pack.hpp): when the
// 8×32 micro-kernel is selected and the plane fits its 32-bit gather indices.
inline bool packs_with_avx512(const Conv2dGeometry& g) {
#ifdef PDYOLO_X86_KERNELS
  return gemm_isa() == GemmIsa::avx512 && g.in_h * g.in_w < (int64_t{1} << 31);
#else
  (void)g;
  return false;
#endif
}

// Convolution weights packed once for the GEMM micro-kernel, one PackedA per group, or their
// Winograd transform where conv2d_image uses it. The storage of the form not in use is kept:
// training packs every layer's weights into one of these each step, switching forms from layer to
// layer, and freeing the other form's megabytes only for a later layer to fault them in again
// made packing several times slower.
struct PackedConvWeights {
  std::vector<PackedA> groups;  // the GEMM's, unless uses_winograd
  WinogradWeights winograd;     // the transform, where uses_winograd
  bool uses_winograd = false;   // packed by pack_conv_weights_with_winograd on a layer where conv_uses_winograd
  PhaseRowLayout phase_rows;    // where conv2d_image reads the inputs, where conv_uses_phase_rows

  // Whether they are packed, for the micro-kernel of `isa`.
  bool packed_for(GemmIsa isa) const {
    if (uses_winograd) return winograd.u[0].isa == isa;
    return !groups.empty() && groups[0].isa == isa;
  }
};

// w [OC, Cg, KH, KW] → packed per group (for the ISA selected now), reusing out's storage.
inline void pack_conv_weights(const Conv2dGeometry& g, const float* w, PackedConvWeights& out) {
  out.groups.resize(static_cast<size_t>(g.groups));
  for (int64_t grp = 0; grp < g.groups; ++grp)
    pack_a(MatrixView{w + conv_group_offsets(g, 0, grp).w, g.patch_size(), 1}, g.out_per_group(), g.patch_size(),
           out.groups[static_cast<size_t>(grp)]);
  out.uses_winograd = false;
  if (conv_uses_phase_rows(g)) set_phase_row_layout(g, out.phase_rows);
  else out.phase_rows.offset.clear();  // no layout of an earlier layer left to pass for this one's
}

// The Winograd transform where conv2d_image can use it, else the same as pack_conv_weights.
inline void pack_conv_weights_with_winograd(const Conv2dGeometry& g, const float* w, PackedConvWeights& out) {
  if (!conv_uses_winograd(g)) return pack_conv_weights(g, w, out);
  pack_winograd_weights(g, w, out.winograd);
  out.uses_winograd = true;
}

// One image with packed weights, the bias and activation applied as each output tile is finished:
// y [OC, OH·OW] = act(w ⊛ x + bias), x [C, H, W]. Patches are packed straight into the GEMM panels.
inline void conv2d_image_gemm(const Conv2dGeometry& g, const PackedConvWeights& w, const float* x, const float* bias,
                              ActivationFn act, float* y) {
  PDYOLO_CHECK(!w.uses_winograd && static_cast<int64_t>(w.groups.size()) == g.groups, "conv2d_image: the weights are not packed for the GEMM");
  const bool pointwise = conv_is_pointwise(g);
  const int64_t N = g.out_plane();
  [[maybe_unused]] const bool avx512_packing = packs_with_avx512(g);  // unused where there is no x86 packer
  for (int64_t grp = 0; grp < g.groups; ++grp) {
    const ConvGroupOffsets o = conv_group_offsets(g, 0, grp);
    const float* x_g = x + o.x;
    const GemmEpilogue epilogue{bias ? bias + grp * g.out_per_group() : nullptr, act};
    const MatrixView image{x_g, N, 1};  // a 1×1 convolution reads its input as B directly
    sgemm_packed(
        w.groups[static_cast<size_t>(grp)], N,
        [&](int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
          if (pointwise) detail::pack_b_panels(image, k0, kc, col0, cols, nr, out);
#ifdef PDYOLO_X86_KERNELS
          else if (avx512_packing) x86::pack_conv_panels_avx512(g, x_g, k0, kc, col0, cols, out);
#endif
          else pack_conv_panels(g, x_g, k0, kc, col0, cols, nr, out);
        },
        y + o.y, N, false, epilogue);
  }
}

// The same, with Winograd F(2×2, 3×3) when the weights were packed for it
// (pack_conv_weights_with_winograd on a layer where conv_uses_winograd), and by phase rows where
// conv_uses_phase_rows (which sums in the GEMM's order: the same sums).
inline void conv2d_image(const Conv2dGeometry& g, const PackedConvWeights& w, const float* x, const float* bias,
                         ActivationFn act, float* y) {
  if (w.uses_winograd) {
    PDYOLO_CHECK(conv_uses_winograd(g), "conv2d_image: the weights were packed for Winograd, which ",
                 gemm_micro_kernel(gemm_isa()).name, " cannot run; pack them again");
    return conv2d_image_winograd(g, w.winograd, x, bias, act, y);
  }
  if (conv_uses_phase_rows(g)) {
    PDYOLO_CHECK(w.groups.size() == 1 && !w.phase_rows.offset.empty(), "conv2d_image: the weights were not packed for this strided layer; pack them with its geometry");
    return conv2d_image_phase_rows(g, w.groups[0], w.phase_rows, x, bias, act, y);
  }
  conv2d_image_gemm(g, w, x, bias, act, y);
}

// How many parts the batch is split into, one per thread, when each thread runs whole images:
// as many as there are threads when they divide the batch evenly (no thread waits for another's
// extra image), else 1 (the threads share each image's GEMMs).
inline int64_t batch_parts(const Conv2dGeometry& g) {
  const int64_t threads = in_parallel_region() ? 1 : num_threads();
  return threads > 1 && g.batch % threads == 0 ? threads : 1;
}

// Runs fn(part, n0, n1) for the batch_parts(g) contiguous ranges [n0, n1) of the batch, each part
// on its own thread: its images' GEMMs then run on that thread alone, and the threads never wait
// for each other between images (one image's GEMM shared by the threads ends in a barrier, where
// the faster thread idles). For yolov7-tiny's training convolutions at batch 8 on 2 threads,
// forward and input gradient took about 0.9× the time with the split (bench_train_convs).
template <class Fn>
void for_each_batch_part(const Conv2dGeometry& g, const Fn& fn) {
  const int64_t parts = batch_parts(g);
  if (parts == 1) {
    fn(int64_t{0}, int64_t{0}, g.batch);
    return;
  }
  parallel_for(0, parts, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) fn(p, g.batch * p / parts, g.batch * (p + 1) / parts);
  });
}

// Runs fn(n) for every image n of the batch (fn writes only image n's outputs). Where the batch
// splits across the threads (batch_parts), each image runs on one thread as there, but the images
// are handed out one at a time: a thread slowed by other load on a shared machine takes fewer
// of them instead of holding the others at the barrier.
template <class Fn>
void for_each_image(const Conv2dGeometry& g, const Fn& fn) {
  if (batch_parts(g) > 1) return parallel_tasks(g.batch, fn);
  for (int64_t n = 0; n < g.batch; ++n) fn(n);
}

// y = w ⊛ x + bias over the batch (the op's forward); the weights are packed once per call, with
// Winograd where conv_uses_winograd as inference packs them. Against the direct convolution, for
// yolov7-tiny's 3×3 layers at batch 8: 0.60–0.75× the time at 80² and 40², 0.74–0.92× at 20²
// and 10². (The gradients this gives stay as close to the reference's as the direct
// convolution's: see the loss-parity test in tests/test_train.cpp.)
inline void conv2d_forward(const Conv2dGeometry& g, const float* x, const float* w, const float* bias, float* y) {
  thread_local PackedConvWeights packed_here;  // reused across calls: steady-state training allocates nothing here
  PackedConvWeights& packed = packed_here;      // named here: the workers must read this thread's copy
  pack_conv_weights_with_winograd(g, w, packed);
  Conv2dGeometry image = g;
  image.batch = 1;
  for_each_image(g, [&](int64_t n) {
    conv2d_image(image, packed, x + n * g.in_channels * g.in_h * g.in_w, bias, {}, y + n * g.out_channels * g.out_plane());
  });
}

// The geometry of the forward convolution that gives a stride-1 convolution's input gradient:
// dx = dy ⊛ w', w' the weights with input and output channels swapped and the taps flipped, and
// the padding that makes the output the input's size. dy [N, OC, OH, OW] → dx [N, C, H, W].
inline Conv2dGeometry backward_input_geometry(const Conv2dGeometry& g) {
  Conv2dGeometry t = g;
  t.in_channels = g.out_channels, t.in_h = g.out_h, t.in_w = g.out_w;
  t.out_channels = g.in_channels, t.out_h = g.in_h, t.out_w = g.in_w;
  t.pad_h = g.dilation_h * (g.kernel_h - 1) - g.pad_h;
  t.pad_w = g.dilation_w * (g.kernel_w - 1) - g.pad_w;
  return t;
}

// Whether conv2d_backward_input computes dx as that forward convolution (stride 1, and its
// padding not negative). On planes of 32×32 and more it saves the column buffer and col2im
// (yolov7-tiny's 3×3 layers at 80² and 40², batch 8: 0.65× and 0.72× the time); on smaller planes
// the transposed GEMM's few long K blocks are as fast or faster (10²: 0.99–1.10×) unless the
// convolution runs with Winograd (20² and 10²: 0.70–0.94×, one layer 1.03×).
inline bool backward_input_as_convolution(const Conv2dGeometry& g) {
  if (g.stride_h != 1 || g.stride_w != 1 || g.pad_h > g.dilation_h * (g.kernel_h - 1) ||
      g.pad_w > g.dilation_w * (g.kernel_w - 1))
    return false;
  return g.out_plane() >= 1024 || conv_uses_winograd(backward_input_geometry(g));
}
// w [OC, Cg, KH, KW] → w' [C, OCg, KH, KW]: per group, w'[c, oc, kh, kw] = w[oc, c, KH−1−kh, KW−1−kw].
inline void flip_transpose_weights(const Conv2dGeometry& g, const float* w, float* flipped) {
  const int64_t cg = g.in_per_group(), ocg = g.out_per_group(), taps = g.kernel_h * g.kernel_w;
  for (int64_t grp = 0; grp < g.groups; ++grp)
    for (int64_t c = 0; c < cg; ++c)
      for (int64_t oc = 0; oc < ocg; ++oc) {
        const float* src = w + ((grp * ocg + oc) * cg + c) * taps;
        float* dst = flipped + ((grp * cg + c) * ocg + oc) * taps;
        for (int64_t t = 0; t < taps; ++t) dst[t] = src[taps - 1 - t];
      }
}

// dx (overwritten) from dy and w: a forward convolution of dy (patches packed straight into the
// GEMM panels) where backward_input_as_convolution; otherwise dcol = w_gᵀ · dy_g per image, scattered
// back by col2im (a 1×1 convolution with stride 1 and no padding writes dx directly).
inline void conv2d_backward_input(const Conv2dGeometry& g, const float* dy, const float* w, float* dx) {
  if (backward_input_as_convolution(g)) {
    thread_local AlignedVector<float> flipped;
    flipped.resize(static_cast<size_t>(g.out_channels * g.patch_size()));
    flip_transpose_weights(g, w, flipped.data());
    return conv2d_forward(backward_input_geometry(g), dy, flipped.data(), nullptr, dx);
  }
  const bool pointwise = conv_is_pointwise(g);
  const int64_t K = g.patch_size(), N = g.out_plane(), OCg = g.out_per_group();
  thread_local PackedConvWeights w_t_here;  // w_gᵀ [K, OCg] per group, packed once for the whole batch
  PackedConvWeights& w_t = w_t_here;
  w_t.groups.resize(static_cast<size_t>(g.groups));
  for (int64_t grp = 0; grp < g.groups; ++grp)
    pack_a(MatrixView{w + conv_group_offsets(g, 0, grp).w, 1, K}, K, OCg, w_t.groups[static_cast<size_t>(grp)]);
  for_each_image(g, [&](int64_t n) {
    thread_local AlignedVector<float> dcol;  // each thread's own
    if (!pointwise && dcol.size() < static_cast<size_t>(K * N)) dcol.resize(static_cast<size_t>(K * N));
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const ConvGroupOffsets o = conv_group_offsets(g, n, grp);
      const MatrixView dy_g{dy + o.y, N, 1};
      float* out = pointwise ? dx + o.x : dcol.data();
      sgemm_packed(w_t.groups[static_cast<size_t>(grp)], N, [&dy_g](int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* panels) {
        detail::pack_b_panels(dy_g, k0, kc, col0, cols, nr, panels);
      }, out, N, false);
      if (!pointwise) col2im(g, dcol.data(), dx + o.x);
    }
  });
}

// Packs the GEMM panels of colᵀ [OH·OW, Cg·KH·KW] (the weight gradient's B: row k = output pixel,
// column j = patch row) for pixels [k0, k0 + kc) and patch rows [col0, col0 + cols). The patch rows
// are gathered from x_g as the forward packs them, into a block that stays in L2 (the forward's
// 32-pixel panels with AVX-512, else one panel as wide as the pixel range), then transposed into
// the panels.
inline void pack_patches_transposed(const Conv2dGeometry& g, const float* x_g, int64_t k0, int64_t kc, int64_t col0,
                                    int64_t cols, int64_t nr, float* out) {
  thread_local AlignedVector<float> block;
  const int64_t pixel_panels = (kc + 31) / 32;
  if (block.size() < static_cast<size_t>(cols * pixel_panels * 32)) block.resize(static_cast<size_t>(cols * pixel_panels * 32));
#ifdef PDYOLO_X86_KERNELS
  if (nr == 32 && packs_with_avx512(g)) {
    x86::pack_conv_panels_avx512(g, x_g, col0, cols, k0, kc, block.data());  // [pixel panel][patch row][32 pixels]
    for (int64_t p = 0; p < pixel_panels; ++p)  // each pixel panel is rows 32p … of every output panel
      x86::pack_transposed_panels_avx512(block.data() + p * cols * 32, 32, 0, std::min<int64_t>(32, kc - 32 * p), 0, cols,
                                         out + p * 32 * 32, kc * 32);
    return;
  }
#endif
  pack_conv_panels(g, x_g, col0, cols, k0, kc, kc, block.data());  // [patch row][pixel]
  detail::pack_b_panels(MatrixView{block.data(), 1, kc}, 0, kc, 0, cols, nr, out);
}

// dw_part (overwritten) = the weight gradient summed over images [n0, n1): per image and group,
// dw_g [OCg, K] (+)= dy_g [OCg, OH·OW] · colᵀ [OH·OW, K], the patches packed straight from x
// (a 1×1 convolution with stride 1 and no padding reads x).
inline void conv2d_backward_weight_images(const Conv2dGeometry& g, const float* x, const float* dy, int64_t n0, int64_t n1,
                                          float* dw_part) {
  const bool pointwise = conv_is_pointwise(g);
  const int64_t K = g.patch_size(), N = g.out_plane(), OCg = g.out_per_group();
  PackedA& dy_packed = detail::thread_packed_a();
  for (int64_t n = n0; n < n1; ++n)
    for (int64_t grp = 0; grp < g.groups; ++grp) {
      const ConvGroupOffsets o = conv_group_offsets(g, n, grp);
      const float* x_g = x + o.x;
      pack_a(MatrixView{dy + o.y, N, 1}, OCg, N, dy_packed);
      sgemm_packed(dy_packed, K, [&](int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
        if (pointwise) detail::pack_b_panels(MatrixView{x_g, 1, N}, k0, kc, col0, cols, nr, out);
        else pack_patches_transposed(g, x_g, k0, kc, col0, cols, nr, out);
      }, dw_part + o.w, K, n > n0);
    }
}

// sum [size] += each of the `count` arrays of `size` floats at partials, one after another.
inline void add_partial_sums(float* sum, const float* partials, int64_t count, int64_t size) {
  parallel_for(0, size, 1 << 14, [&](int64_t lo, int64_t hi) {
    for (int64_t p = 0; p < count; ++p) {
      const float* part = partials + p * size;
      for (int64_t i = lo; i < hi; ++i) sum[i] += part[i];
    }
  });
}

// dw (overwritten) of a layer where conv_uses_winograd: each thread sums the Winograd products of
// its share of the batch (winograd_weight_grad_products), the parts are added, and the sum is
// transformed back to 3×3 taps once.
inline void conv2d_backward_weight_winograd(const Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
  const int64_t parts = batch_parts(g), size = 16 * g.out_channels * g.in_channels;
  thread_local AlignedVector<float> products_here;
  AlignedVector<float>& products = products_here;  // [part][ξ][OC][IC]; named here: the workers must use this thread's buffer
  products.resize(static_cast<size_t>(parts * size));
  for_each_batch_part(g, [&](int64_t p, int64_t n0, int64_t n1) {
    winograd_weight_grad_products(g, x, dy, n0, n1, products.data() + p * size);
  });
  if (parts > 1) add_partial_sums(products.data(), products.data() + size, parts - 1, size);
  winograd_weight_grad_from_products(g.out_channels, g.in_channels, products.data(), dw);
}

// dw (overwritten) from x and dy, summed over the batch. Each thread sums its own share of the
// images into its own buffer with no synchronisation (per image, the GEMM is small against its
// long K = OH·OW: split across threads, its few tiles balance badly), then the parts are added.
// The split depends only on the thread count, so results are deterministic. 3×3 stride-1 layers
// run with Winograd where the forward does.
inline void conv2d_backward_weight(const Conv2dGeometry& g, const float* x, const float* dy, float* dw) {
  if (conv_uses_winograd(g)) return conv2d_backward_weight_winograd(g, x, dy, dw);
  const int64_t parts = batch_parts(g), size = g.out_channels * g.patch_size();
  thread_local AlignedVector<float> partial_sums;
  AlignedVector<float>& partials = partial_sums;  // named here: the workers must use this thread's buffer
  partials.resize(static_cast<size_t>((parts - 1) * size));
  for_each_batch_part(g, [&](int64_t p, int64_t n0, int64_t n1) {
    conv2d_backward_weight_images(g, x, dy, n0, n1, p == 0 ? dw : partials.data() + (p - 1) * size);
  });
  if (parts > 1) add_partial_sums(dw, partials.data(), parts - 1, size);
}

}  // namespace pdyolo::kernels::cpu
