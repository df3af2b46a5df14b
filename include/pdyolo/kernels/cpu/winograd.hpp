// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions on the AVX-512 micro-kernel: each 2×2 output
// tile comes from its 4×4 input window with 16 multiplies per (input, output) channel pair instead
// of 36, so the GEMM does 4/9 of the direct convolution's work.
//
//   U[ξ] = (G g Gᵀ)[ξ]   the weights, transformed and packed once: 16 matrices [OC, IC]
//   V[ξ] = (Bᵀ d B)[ξ]   the input windows of 32 tiles at a time: 16 GEMM panels [IC, 32]
//   M[ξ] = U[ξ] · V[ξ]   16 micro-kernel tiles per strip of 8 output channels
//   Y    = Aᵀ M A        the tile's 2×2 outputs, then bias and activation
//
// with G = [1 0 0; ½ ½ ½; ½ −½ ½; 0 0 1] (the transforms of B and A are in kernels/x86/winograd.hpp).
// ξ = 4·row + column indexes the 4×4 transformed tile throughout.
#pragma once
#include <algorithm>
#include <vector>

#include "pdyolo/kernels/cpu/sgemm.hpp"
#include "pdyolo/kernels/x86/winograd.hpp"

namespace pdyolo::kernels::cpu {

// Whether conv2d_image runs g with Winograd F(2×2, 3×3): a 3×3 stride-1 convolution without
// dilation or groups, with the AVX-512 micro-kernel selected.
inline bool conv_uses_winograd(const Conv2dGeometry& g) {
#ifdef PDYOLO_X86_KERNELS
  return gemm_isa() == GemmIsa::avx512 && g.kernel_h == 3 && g.kernel_w == 3 && g.stride_h == 1 && g.stride_w == 1 &&
         g.dilation_h == 1 && g.dilation_w == 1 && g.groups == 1 && g.in_h * g.in_w < (int64_t{1} << 31);
#else
  (void)g;
  return false;
#endif
}

// The tile grid as a convolution: tile (ty, tx) yields outputs (2ty + a, 2tx + b), a, b ∈ {0, 1},
// from input rows 2ty − pad_h … + 3 and columns 2tx − pad_w … + 3 — the patches of a 4×4
// convolution at stride 2, which is how the windows are gathered.
inline Conv2dGeometry winograd_windows(const Conv2dGeometry& g) {
  Conv2dGeometry w = g;
  w.kernel_h = w.kernel_w = 4;
  w.stride_h = w.stride_w = 2;
  w.out_h = (g.out_h + 1) / 2;
  w.out_w = (g.out_w + 1) / 2;
  return w;
}

// The 16 transformed weight matrices U[ξ] [OC, IC], packed for the micro-kernel.
struct WinogradWeights {
  std::vector<PackedA> u;
};

// The 1-D weight transform G·(k0, k1, k2).
inline void winograd_weight_1d(float k0, float k1, float k2, float out[4]) {
  out[0] = k0;
  out[1] = 0.5f * (k0 + k1 + k2);
  out[2] = 0.5f * (k0 - k1 + k2);
  out[3] = k2;
}

// G applied to (k0[i], k1[i], k2[i]) for i < n: out[j][i] = (G·k)[j].
inline void winograd_weight_1d_rows(const float* k0, const float* k1, const float* k2, int64_t n, float* const out[4]) {
  for (int64_t i = 0; i < n; ++i) {
    float v[4];
    winograd_weight_1d(k0[i], k1[i], k2[i], v);
    for (int j = 0; j < 4; ++j) out[j][i] = v[j];
  }
}

// w [OC, IC, 3, 3] → U, reusing out's storage. Training packs every step (for the forward, and
// again for the input gradient), so the transform runs on all threads, one output channel at a
// time over all its input channels: each of the 16 rows U[ξ][oc] is written by one loop of its
// own (U[ξ] are OC·IC floats apart, and writing the 16 element by element in turn conflicted in
// the cache). 256→512 channels: 1.6 ms, against 9.8 ms before (one thread, a fresh buffer) and
// 0.3–0.5 ms for the direct convolution's packing (bench/RESULTS.md, seventh round).
inline void pack_winograd_weights(const Conv2dGeometry& g, const float* w, WinogradWeights& out) {
  const int64_t OC = g.out_channels, IC = g.in_channels;
  thread_local AlignedVector<float> transformed_here;
  AlignedVector<float>& u = transformed_here;  // [ξ][oc][ic]; named here: the workers must use this thread's buffer
  u.resize(static_cast<size_t>(16 * OC * IC));
  parallel_for(0, OC, 1, [&](int64_t oc0, int64_t oc1) {
    std::vector<float> taps(static_cast<size_t>(9 * IC)), columns(static_cast<size_t>(12 * IC));
    auto tap = [&](int64_t t) { return taps.data() + t * IC; };            // [tap][ic]
    auto column = [&](int64_t c, int64_t r) { return columns.data() + (4 * c + r) * IC; };  // (G g)[r] of kernel column c
    for (int64_t oc = oc0; oc < oc1; ++oc) {
      for (int64_t ic = 0; ic < IC; ++ic)
        for (int64_t t = 0; t < 9; ++t) tap(t)[ic] = w[(oc * IC + ic) * 9 + t];
      for (int64_t c = 0; c < 3; ++c) {  // G g: the transform of each kernel column
        float* const rows[4] = {column(c, 0), column(c, 1), column(c, 2), column(c, 3)};
        winograd_weight_1d_rows(tap(c), tap(3 + c), tap(6 + c), IC, rows);
      }
      for (int64_t r = 0; r < 4; ++r) {  // (G g) Gᵀ: the transform of each row, into U[4r + c][oc]
        float* const rows[4] = {u.data() + ((4 * r) * OC + oc) * IC, u.data() + ((4 * r + 1) * OC + oc) * IC,
                                u.data() + ((4 * r + 2) * OC + oc) * IC, u.data() + ((4 * r + 3) * OC + oc) * IC};
        winograd_weight_1d_rows(column(0, r), column(1, r), column(2, r), IC, rows);
      }
    }
  });
  out.u.resize(16);
  for (int64_t xi = 0; xi < 16; ++xi) pack_a(MatrixView{u.data() + xi * OC * IC, IC, 1}, OC, IC, out.u[static_cast<size_t>(xi)]);
}

// y [OC, OH·OW] = act(w ⊛ x + bias) for one image, x [IC, H, W] (conv_uses_winograd(g)).
// Tasks take a group of panels (32 tiles each; their V stays in L2) and a range of 8-row strips.
inline void conv2d_image_winograd(const Conv2dGeometry& g, const WinogradWeights& w, const float* x, const float* bias,
                                  ActivationFn act, float* y) {
#ifdef PDYOLO_X86_KERNELS
  constexpr int64_t mr = 8, nr = 32;
  PDYOLO_CHECK(w.u.size() == 16 && w.u[0].isa == GemmIsa::avx512 && gemm_isa() == GemmIsa::avx512,
               "conv2d_image_winograd: needs weights packed for avx512-8x32");
  const Conv2dGeometry windows = winograd_windows(g);
  const int64_t IC = g.in_channels, OC = g.out_channels;
  const int64_t tiles = windows.out_h * windows.out_w, panels = (tiles + nr - 1) / nr;
  const int64_t strips = w.u[0].strips(), kb = k_block_rows(IC), k_blocks = (IC + kb - 1) / kb, panel_floats = 16 * IC * nr;
  const int64_t group = std::clamp<int64_t>(256 / IC, 1, 8);  // panels per task: 16·IC·32 floats each, ≤ 512 KB in all
  const int64_t groups = (panels + group - 1) / group;
  const int64_t wanted_tasks = kTasksPerThread * num_threads();
  const int64_t row_splits = std::clamp<int64_t>((wanted_tasks + groups - 1) / groups, 1, std::max<int64_t>(1, strips * mr / 64));

  parallel_tasks(groups * row_splits, [&](int64_t task) {
    const int64_t q0 = task / row_splits * group, q1 = std::min(panels, q0 + group), split = task % row_splits;
    const int64_t strip0 = strips * split / row_splits, strip1 = strips * (split + 1) / row_splits;
    thread_local AlignedVector<float> v;  // V of each panel: [panel][ξ][IC][32]
    v.resize(static_cast<size_t>((q1 - q0) * panel_floats));
    thread_local std::vector<x86::PanelHalf> halves_here;
    std::vector<x86::PanelHalf>& halves = halves_here;  // [panel - q0][half]
    halves.resize(static_cast<size_t>(2 * (q1 - q0)));
    for (int64_t q = q0; q < q1; ++q) {
      x86::PanelHalf* panel = halves.data() + 2 * (q - q0);
      for (int half = 0; half < 2; ++half) panel[half] = x86::resolve_panel_half(g, q * nr + half * 16);
      x86::winograd_input_panel_avx512(panel, x, g.in_h, g.in_w, IC, v.data() + (q - q0) * panel_floats);
    }
    alignas(64) float m[16 * mr * nr];  // the 16 products M[ξ] of one strip × panel
    for (int64_t s = strip0; s < strip1; ++s)
      for (int64_t q = q0; q < q1; ++q) {
        const float* vq = v.data() + (q - q0) * panel_floats;
        for (int64_t xi = 0; xi < 16; ++xi)
          for (int64_t p = 0; p < k_blocks; ++p) {
            const int64_t k0 = p * kb, kc = std::min(kb, IC - k0);
            x86::sgemm_ukernel_avx512_8x32(kc, w.u[static_cast<size_t>(xi)].strip(s, k0, kc), vq + (xi * IC + k0) * nr,
                                           m + xi * mr * nr, nr, p > 0);
          }
        x86::winograd_store_panel_avx512(g, halves.data() + 2 * (q - q0), s * mr, std::min(mr, OC - s * mr), m, bias, act, y);
      }
  });
#else
  (void)g, (void)w, (void)x, (void)bias, (void)act, (void)y;
  throw_error("conv2d_image_winograd: built without the x86 kernels");
#endif
}

// The transpose of winograd_weight_1d: k = Gᵀ·(u0, u1, u2, u3).
inline void winograd_weight_grad_1d(float u0, float u1, float u2, float u3, float out[3]) {
  out[0] = u0 + 0.5f * (u1 + u2);
  out[1] = 0.5f * (u1 - u2);
  out[2] = 0.5f * (u1 + u2) + u3;
}

// dw [OC, IC, 3, 3] = Gᵀ dU[·][oc][ic] G for every channel pair: the transpose of the weight
// transform. dU [16][OC][IC], ξ = 4·row + column.
inline void winograd_weight_grad_from_products(int64_t OC, int64_t IC, const float* du, float* dw) {
  parallel_for(0, OC * IC, 256, [&](int64_t lo, int64_t hi) {
    for (int64_t pair = lo; pair < hi; ++pair) {
      float rows[4][3];  // dU Gᵀ… : each row of the 4×4 gradient transformed to 3
      for (int r = 0; r < 4; ++r) {
        const float* u = du + (4 * r) * OC * IC + pair;
        winograd_weight_grad_1d(u[0], u[OC * IC], u[2 * OC * IC], u[3 * OC * IC], rows[r]);
      }
      float* out = dw + pair * 9;
      for (int c = 0; c < 3; ++c) {  // then each column
        float k[3];
        winograd_weight_grad_1d(rows[0][c], rows[1][c], rows[2][c], rows[3][c], k);
        for (int r = 0; r < 3; ++r) out[3 * r + c] = k[r];
      }
    }
  });
}

// The weight gradient of images [n0, n1) as Winograd products, du_part [16][OC][IC] (overwritten):
// dU[ξ] = Σ over images and tiles of dM[ξ] [OC, tiles] · V[ξ]ᵀ [tiles, IC], with V the forward's
// input transform and dM = A dY Aᵀ the gradient of the tile products; 16 GEMMs with K = the
// tiles, 4/9 of the direct weight gradient's multiply-adds.
inline void winograd_weight_grad_products(const Conv2dGeometry& g, const float* x, const float* dy, int64_t n0, int64_t n1,
                                          float* du_part) {
#ifdef PDYOLO_X86_KERNELS
  const Conv2dGeometry windows = winograd_windows(g);
  const int64_t IC = g.in_channels, OC = g.out_channels, plane = g.in_h * g.in_w, out_plane = g.out_plane();
  const int64_t tiles_w = windows.out_w, tiles = windows.out_h * tiles_w, panels = (tiles + 31) / 32, row = panels * 32;
  thread_local AlignedVector<float> v_here, dm_here;
  AlignedVector<float>& v = v_here;    // V [ξ][IC][row]: tile t of the image at column t
  AlignedVector<float>& dm = dm_here;  // dM [ξ][OC][row]
  v.resize(static_cast<size_t>(16 * IC * row));
  dm.resize(static_cast<size_t>(16 * OC * row));
  PackedA& dm_packed = detail::thread_packed_a();
  thread_local std::vector<x86::PanelHalf> halves_here;
  std::vector<x86::PanelHalf>& halves = halves_here;  // [panel][half]: the same for every image
  halves.resize(static_cast<size_t>(panels * 2));
  for (int64_t q = 0; q < panels; ++q)
    for (int half = 0; half < 2; ++half) halves[static_cast<size_t>(2 * q + half)] = x86::resolve_panel_half(g, q * 32 + half * 16);
  for (int64_t n = n0; n < n1; ++n) {
    const float* x_n = x + n * IC * plane;
    const float* dy_n = dy + n * OC * out_plane;
    parallel_for(0, panels, 1, [&](int64_t q0, int64_t q1) {
      for (int64_t q = q0; q < q1; ++q)
        x86::winograd_input_panel_avx512(halves.data() + 2 * q, x_n, g.in_h, g.in_w, IC, v.data() + q * 32, row);
    });
    parallel_for(0, OC, 1, [&](int64_t oc0, int64_t oc1) {
      for (int64_t oc = oc0; oc < oc1; ++oc)
        for (int64_t ty = 0; ty < windows.out_h; ++ty) {
          const float* top = dy_n + (oc * g.out_h + 2 * ty) * g.out_w;
          const float* bottom = 2 * ty + 1 < g.out_h ? top + g.out_w : nullptr;
          for (int64_t tx = 0; tx < tiles_w; tx += 16)
            x86::winograd_output_grad_tiles_avx512(top + 2 * tx, bottom ? bottom + 2 * tx : nullptr, g.out_w - 2 * tx,
                                                   std::min<int64_t>(16, tiles_w - tx), dm.data() + oc * row + ty * tiles_w + tx,
                                                   OC * row);
        }
    });
    for (int64_t xi = 0; xi < 16; ++xi) {
      pack_a(MatrixView{dm.data() + xi * OC * row, row, 1}, OC, tiles, dm_packed);
      const MatrixView v_t{v.data() + xi * IC * row, 1, row};  // V[ξ]ᵀ [tiles, IC]
      sgemm_packed(dm_packed, IC, [&v_t](int64_t k0, int64_t kc, int64_t col0, int64_t cols, int64_t nr, float* out) {
        detail::pack_b_panels(v_t, k0, kc, col0, cols, nr, out);
      }, du_part + xi * OC * IC, IC, n > n0);
    }
  }
#else
  (void)g, (void)x, (void)dy, (void)n0, (void)n1, (void)du_part;
  throw_error("winograd_weight_grad_products: built without the x86 kernels");
#endif
}

}  // namespace pdyolo::kernels::cpu
