// AVX-512 transforms of the Winograd F(2×2, 3×3) convolution (kernels/cpu/winograd.hpp), 32 tiles
// at a time as two 16-lane halves. Every value below is a vector over tiles:
//   input   V = Bᵀ d B     d: the tile's 4×4 input window       Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   output  Y = Aᵀ M A     M: the 4×4 products U·V of the tile  Aᵀ = [1 1 1 0; 0 1 −1 −1]
#pragma once
#include <cstdint>

#include "pdyolo/kernels/x86/conv_pack.hpp"
#include "pdyolo/kernels/x86/sgemm_ukernels.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// The 4 values r·Bᵀ… of one row or column of 4 (the 1-D input transform).
struct Quad {
  __m512 v[4];
};
__attribute__((target("avx512f"))) inline Quad input_transform_1d(__m512 d0, __m512 d1, __m512 d2, __m512 d3) {
  return {{_mm512_sub_ps(d0, d2), _mm512_add_ps(d1, d2), _mm512_sub_ps(d2, d1), _mm512_sub_ps(d1, d3)}};
}

// The 16 transformed rows V[ξ] (ξ = 4·row + column) of one channel, 16 tiles: d[4·r + c] are the
// window's values, vectors over the tiles. out[ξ · ld] receives V[ξ].
__attribute__((target("avx512f"))) inline void winograd_input_tile_avx512(const __m512 d[16], float* out, int64_t ld) {
  Quad rows[4];  // Bᵀ d: transform each column
  for (int c = 0; c < 4; ++c) {
    const Quad q = input_transform_1d(d[c], d[4 + c], d[8 + c], d[12 + c]);
    for (int r = 0; r < 4; ++r) rows[r].v[c] = q.v[r];
  }
  for (int r = 0; r < 4; ++r) {  // (Bᵀ d) B: transform each row
    const Quad q = input_transform_1d(rows[r].v[0], rows[r].v[1], rows[r].v[2], rows[r].v[3]);
    for (int c = 0; c < 4; ++c) _mm512_storeu_ps(out + (4 * r + c) * ld, q.v[c]);
  }
}

// V of every channel of x [channels, plane] for 32 tiles: lanes[0..15] / lanes[16..31] are the
// resolved taps of the 4×4 windows (resolve_tap_lanes on the window geometry) of the panel's two
// halves. Channel c's V[ξ] goes to out + (ξ · channels + c) · row_stride, 32 floats: with
// row_stride 32 one GEMM B panel per ξ (the forward); with longer rows V[ξ] [channels, tiles]
// of a whole image, this panel's 32 tiles being the columns at out (the weight gradient).
__attribute__((target("avx512f"))) inline void winograd_input_panel_avx512(const TapLanes* lanes, const float* x, int64_t plane,
                                                                           int64_t channels, float* out,
                                                                           int64_t row_stride = 32) {
  for (int64_t c = 0; c < channels; ++c)
    for (int half = 0; half < 2; ++half) {
      __m512 d[16];
      for (int t = 0; t < 16; ++t) d[t] = read_tap_lanes(lanes[half * 16 + t], x + c * plane);
      winograd_input_tile_avx512(d, out + c * row_stride + half * 16, channels * row_stride);
    }
}

// Columns 2t and 2t + 1 of 16 tiles t side by side: the first `columns` (≤ 32) values of row, the
// rest (or all, where row is null) zeros, split into the tiles' left and right columns.
__attribute__((target("avx512f"))) inline void split_tile_columns_avx512(const float* row, int64_t columns, __m512& left,
                                                                         __m512& right) {
  const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  const __mmask16 low = first_lanes(std::min<int64_t>(columns, 16)), high = first_lanes(std::max<int64_t>(columns - 16, 0));
  const __m512 a = row ? _mm512_maskz_loadu_ps(low, row) : _mm512_setzero_ps();
  const __m512 b = row ? _mm512_maskz_loadu_ps(high, row + 16) : _mm512_setzero_ps();
  left = _mm512_permutex2var_ps(a, even, b);
  right = _mm512_permutex2var_ps(a, odd, b);
}

// The gradient of the tile products, dM = A dY Aᵀ (the transpose of Y = Aᵀ M A), for up to 16
// tiles side by side in one tile row: top and bottom are the two output-gradient rows from the
// tiles' first column (bottom null below the last output row), `columns` of them valid (≤ 32;
// the rest, and the missing bottom row, read as zeros). out + ξ · ld receives dM[ξ] of the
// `tiles` tiles.
__attribute__((target("avx512f"))) inline void winograd_output_grad_tiles_avx512(const float* top, const float* bottom,
                                                                                 int64_t columns, int64_t tiles, float* out,
                                                                                 int64_t ld) {
  __m512 y[2][2];
  split_tile_columns_avx512(top, columns, y[0][0], y[0][1]);
  split_tile_columns_avx512(bottom, columns, y[1][0], y[1][1]);
  __m512 rows[4][2];  // A dY: the rows y0, y0 + y1, y0 − y1, −y1
  for (int b = 0; b < 2; ++b) {
    rows[0][b] = y[0][b];
    rows[1][b] = _mm512_add_ps(y[0][b], y[1][b]);
    rows[2][b] = _mm512_sub_ps(y[0][b], y[1][b]);
    rows[3][b] = _mm512_sub_ps(_mm512_setzero_ps(), y[1][b]);
  }
  const __mmask16 store = first_lanes(tiles);
  for (int r = 0; r < 4; ++r) {  // (A dY) Aᵀ: the same on each row
    const __m512 p = rows[r][0], q = rows[r][1];
    _mm512_mask_storeu_ps(out + (4 * r) * ld, store, p);
    _mm512_mask_storeu_ps(out + (4 * r + 1) * ld, store, _mm512_add_ps(p, q));
    _mm512_mask_storeu_ps(out + (4 * r + 2) * ld, store, _mm512_sub_ps(p, q));
    _mm512_mask_storeu_ps(out + (4 * r + 3) * ld, store, _mm512_sub_ps(_mm512_setzero_ps(), q));
  }
}

// The 2 values of Aᵀ applied to 4.
__attribute__((target("avx512f"))) inline void output_transform_1d(__m512 m0, __m512 m1, __m512 m2, __m512 m3, __m512& y0, __m512& y1) {
  y0 = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
  y1 = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
}

// Y = act(Aᵀ M A + bias) of 16 tiles: m[ξ] the 16 products, y[2·a + b] receives output (a, b).
__attribute__((target("avx512f"))) inline void winograd_output_tile_avx512(const __m512 m[16], float bias, ActivationFn act, __m512 y[4]) {
  __m512 t[2][4];  // Aᵀ M: transform each column
  for (int c = 0; c < 4; ++c) output_transform_1d(m[c], m[4 + c], m[8 + c], m[12 + c], t[0][c], t[1][c]);
  const __m512 b = _mm512_set1_ps(bias);
  for (int a = 0; a < 2; ++a) {  // (Aᵀ M) A: transform each row
    __m512 y0, y1;
    output_transform_1d(t[a][0], t[a][1], t[a][2], t[a][3], y0, y1);
    y[2 * a] = activate_avx512(_mm512_add_ps(y0, b), act);
    y[2 * a + 1] = activate_avx512(_mm512_add_ps(y1, b), act);
  }
}

// Output row pairs of 16 tiles that lie side by side in one tile row, all inside the image: the
// 32 values of output row a are y(a, 0) and y(a, 1) interleaved, stored as two vectors at row_a.
__attribute__((target("avx512f"))) inline void store_interleaved_avx512(__m512 even, __m512 odd, float* row) {
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  const __m512i high = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  _mm512_storeu_ps(row, _mm512_permutex2var_ps(even, low, odd));
  _mm512_storeu_ps(row + 16, _mm512_permutex2var_ps(even, high, odd));
}

// Writes the outputs of `rows` output channels × the 32 tiles of panel q (tiles q·32 …, row-major
// over the tile grid of `windows`, see winograd_windows): m holds the 16 products of every tile,
// m[ξ · 256 + i · 32 + lane] for row i. y [OC, OH, OW] from its row `row0` on.
__attribute__((target("avx512f"))) inline void winograd_store_panel_avx512(const Conv2dGeometry& g, const Conv2dGeometry& windows,
                                                                           int64_t q, int64_t row0, int64_t rows, const float* m,
                                                                           const float* bias, ActivationFn act, float* y) {
  const int64_t tiles = windows.out_h * windows.out_w, tiles_w = windows.out_w;
  for (int half = 0; half < 2; ++half) {
    const int64_t j0 = q * 32 + half * 16;
    if (j0 >= tiles) break;
    const int64_t ty = j0 / tiles_w, tx = j0 % tiles_w;
    const bool side_by_side = 2 * tx + 32 <= g.out_w;  // 16 whole tiles in one tile row
    for (int64_t i = 0; i < rows; ++i) {
      __m512 products[16], out[4];
      for (int xi = 0; xi < 16; ++xi) products[xi] = _mm512_load_ps(m + xi * 256 + i * 32 + half * 16);
      winograd_output_tile_avx512(products, bias ? bias[row0 + i] : 0.0f, act, out);
      float* plane = y + (row0 + i) * g.out_h * g.out_w;
      if (side_by_side) {
        for (int64_t a = 0; a < 2 && 2 * ty + a < g.out_h; ++a)
          store_interleaved_avx512(out[2 * a], out[2 * a + 1], plane + (2 * ty + a) * g.out_w + 2 * tx);
        continue;
      }
      alignas(64) float values[4][16];
      for (int v = 0; v < 4; ++v) _mm512_store_ps(values[v], out[v]);
      for (int64_t l = 0; l < 16 && j0 + l < tiles; ++l) {
        const int64_t oh = (j0 + l) / tiles_w * 2, ow = (j0 + l) % tiles_w * 2;
        for (int64_t a = 0; a < 2 && oh + a < g.out_h; ++a)
          for (int64_t b = 0; b < 2 && ow + b < g.out_w; ++b) plane[(oh + a) * g.out_w + ow + b] = values[2 * a + b][l];
      }
    }
  }
}

}  // namespace pdyolo::kernels::x86
#endif
