// AVX-512 transforms of the Winograd F(2×2, 3×3) convolution (kernels/cpu/winograd.hpp), 32 tiles
// at a time as two 16-lane halves. Every value below is a vector over tiles:
//   input   V = Bᵀ d B     d: the tile's 4×4 input window       Bᵀ = [1 0 −1 0; 0 1 1 0; 0 −1 1 0; 0 1 0 −1]
//   output  Y = Aᵀ M A     M: the 4×4 products U·V of the tile  Aᵀ = [1 1 1 0; 0 1 −1 −1]
#pragma once
#include <algorithm>
#include <cstdint>

#include "pdyolo/kernels/x86/conv_pack.hpp"
#include "pdyolo/kernels/x86/conv_rows.hpp"
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

// base + offset for a masked load or store: its enabled lanes lie inside the buffer, the address
// itself may not (a window's padding columns before the plane). Formed on integers, so no pointer
// arithmetic goes out of bounds.
template <class T>
T* masked_address(T* base, int64_t offset) {
  return reinterpret_cast<T*>(reinterpret_cast<std::uintptr_t>(base) + static_cast<std::uintptr_t>(offset) * sizeof(T));
}

// Bits i < 16 with lo ≤ base + i < hi.
inline __mmask16 lanes_in_range(int64_t base, int64_t lo, int64_t hi) {
  const int64_t first = std::clamp<int64_t>(lo - base, 0, 16), end = std::clamp<int64_t>(hi - base, 0, 16);
  return first < end ? static_cast<__mmask16>(first_lanes(end) & ~first_lanes(first)) : __mmask16(0);
}

// The lanes of a panel half (16 consecutive tiles of the row-major tile grid) that lie in one tile
// row. Lane l reads the 4×4 window at input rows row … row + 3, columns column + 2l … + 3, and
// writes the 2×2 outputs at rows out_row, out_row + 1, columns out_column + 2l, + 1. column and
// out_column are those of lane 0 as if it lay in this tile row too, so one load of the 34 input
// columns column … column + 33 of a row serves all 16 lanes; the masks keep the loads inside the
// image and the stores to the run's own outputs.
struct TileRun {
  __mmask16 lanes = 0;                   // the run's lanes (consecutive)
  int32_t row = 0, column = 0;           // input row / column of lane 0's window (negative in the padding)
  __mmask16 in_image[3] = {};            // which of the input columns column + 0 … 15, 16 … 31, 32 … 33 lie inside
  int32_t out_row = 0, out_column = 0;   // output row / column of lane 0's tile
  __mmask16 written[2] = {};             // which of the outputs out_column + 0 … 15, 16 … 31 are the run's, inside
};

// A panel half as at most 16 runs (one per tile row it touches; none for lanes past the last tile).
struct PanelHalf {
  int runs = 0;
  TileRun run[16];
};

// The runs of the 16 tiles from j0 of the tile grid of g (a 3×3 stride-1 convolution: tile (ty, tx)
// yields outputs (2ty + a, 2tx + b) from its window at (2ty − pad_h, 2tx − pad_w)).
inline PanelHalf resolve_panel_half(const Conv2dGeometry& g, int64_t j0) {
  const int64_t tiles_w = (g.out_w + 1) / 2, tiles = (g.out_h + 1) / 2 * tiles_w;
  PanelHalf half;
  for (int64_t l = 0; l < 16 && j0 + l < tiles;) {
    const int64_t j = j0 + l, tx = j % tiles_w, n = std::min({16 - l, tiles_w - tx, tiles - j});
    TileRun& r = half.run[half.runs++];
    r.lanes = lanes_in_range(0, l, l + n);
    r.out_row = static_cast<int32_t>(j / tiles_w * 2);
    r.out_column = static_cast<int32_t>(2 * (tx - l));
    r.row = static_cast<int32_t>(r.out_row - g.pad_h);
    r.column = static_cast<int32_t>(r.out_column - g.pad_w);
    for (int k = 0; k < 3; ++k) r.in_image[k] = lanes_in_range(r.column + 16 * k, 0, g.in_w);
    r.in_image[2] &= 3;
    for (int k = 0; k < 2; ++k)
      r.written[k] = lanes_in_range(16 * k, 2 * l, 2 * (l + n)) & lanes_in_range(r.out_column + 16 * k, 0, g.out_w);
    l += n;
  }
  return half;
}

// d·B of one window row for 16 side-by-side tiles: lane l's window row is src[2l … 2l + 3]; the
// 34 values src[0 … 33] are loaded where `in_image` (see TileRun) and read as zeros elsewhere.
__attribute__((target("avx512f"))) inline Quad window_row_transform_avx512(const float* src, const __mmask16 in_image[3]) {
  const __m512i next = _mm512_set_epi32(16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1);  // lanes 1 … 15, then tail[0]
  const __m512i next_odd = _mm512_mask_mov_epi32(next, 0x8000, _mm512_set1_epi32(17));            // … then tail[1]
  const __m512 a = _mm512_maskz_loadu_ps(in_image[0], src), b = _mm512_maskz_loadu_ps(in_image[1], src + 16);
  const __m512 tail = _mm512_maskz_loadu_ps(in_image[2], src + 32);
  __m512 c0, c1;  // columns 2l, 2l + 1
  split_even_odd_avx512(a, b, c0, c1);
  const __m512 c2 = _mm512_permutex2var_ps(c0, next, tail);                                     // 2l + 2
  const __m512 c3 = _mm512_permutex2var_ps(c1, next_odd, tail);                                 // 2l + 3
  return input_transform_1d(c0, c1, c2, c3);
}

// V of every channel of x [channels, height, width] for the 32 tiles of a panel (halves: its two
// resolved halves; lanes past the last tile read as zeros). Channel c's V[ξ] (ξ = 4·row + column)
// goes to out + (ξ · channels + c) · row_stride, 32 floats: with row_stride 32 one GEMM B panel per
// ξ (the forward); with longer rows V[ξ] [channels, tiles] of a whole image, this panel's 32
// tiles being the columns at out (the weight gradient).
__attribute__((target("avx512f"))) inline void winograd_input_panel_avx512(const PanelHalf halves[2], const float* x, int64_t height,
                                                                           int64_t width, int64_t channels, float* out,
                                                                           int64_t row_stride = 32) {
  const int64_t ld = channels * row_stride;
  for (int64_t c = 0; c < channels; ++c)
    for (int h = 0; h < 2; ++h) {
      Quad rows[4];  // d·B of each window row
      for (Quad& q : rows)
        for (__m512& v : q.v) v = _mm512_setzero_ps();
      const PanelHalf& half = halves[h];
      for (int i = 0; i < half.runs; ++i) {
        const TileRun& run = half.run[i];
        for (int r = 0; r < 4; ++r) {
          const int64_t ih = run.row + r;
          if (ih < 0 || ih >= height) continue;  // a padding row: zeros
          const Quad q = window_row_transform_avx512(masked_address(x, (c * height + ih) * width + run.column), run.in_image);
          for (int k = 0; k < 4; ++k) rows[r].v[k] = _mm512_mask_mov_ps(rows[r].v[k], run.lanes, q.v[k]);
        }
      }
      float* v = out + c * row_stride + h * 16;
      for (int k = 0; k < 4; ++k) {  // Bᵀ·(d·B): the same down each column
        const Quad q = input_transform_1d(rows[0].v[k], rows[1].v[k], rows[2].v[k], rows[3].v[k]);
        for (int r = 0; r < 4; ++r) _mm512_storeu_ps(v + (4 * r + k) * ld, q.v[r]);
      }
    }
}

// Columns 2t and 2t + 1 of 16 tiles t side by side: the first `columns` (≤ 32) values of row, the
// rest (or all, where row is null) zeros, split into the tiles' left and right columns.
__attribute__((target("avx512f"))) inline void split_tile_columns_avx512(const float* row, int64_t columns, __m512& left,
                                                                         __m512& right) {
  const __mmask16 low = first_lanes(std::min<int64_t>(columns, 16)), high = first_lanes(std::max<int64_t>(columns - 16, 0));
  const __m512 a = row ? _mm512_maskz_loadu_ps(low, row) : _mm512_setzero_ps();
  const __m512 b = row ? _mm512_maskz_loadu_ps(high, row + 16) : _mm512_setzero_ps();
  split_even_odd_avx512(a, b, left, right);
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

// Writes the outputs of `rows` output channels × the 32 tiles of a panel (halves: its resolved
// halves): m holds the 16 products of every tile, m[ξ · 256 + i · 32 + lane] for row i. y
// [OC, OH, OW] from its row `row0` on.
__attribute__((target("avx512f"))) inline void winograd_store_panel_avx512(const Conv2dGeometry& g, const PanelHalf halves[2],
                                                                           int64_t row0, int64_t rows, const float* m,
                                                                           const float* bias, ActivationFn act, float* y) {
  const __m512i low = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);  // interleave y(a, 0), y(a, 1)
  const __m512i high = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
  for (int h = 0; h < 2; ++h) {
    const PanelHalf& half = halves[h];
    for (int64_t i = 0; i < rows && half.runs > 0; ++i) {
      __m512 products[16], out[4];
      for (int xi = 0; xi < 16; ++xi) products[xi] = _mm512_load_ps(m + xi * 256 + i * 32 + h * 16);
      winograd_output_tile_avx512(products, bias ? bias[row0 + i] : 0.0f, act, out);
      float* plane = y + (row0 + i) * g.out_h * g.out_w;
      for (int a = 0; a < 2; ++a) {  // output row a of each tile: 32 values, the tiles' two columns interleaved
        const __m512 first = _mm512_permutex2var_ps(out[2 * a], low, out[2 * a + 1]);
        const __m512 second = _mm512_permutex2var_ps(out[2 * a], high, out[2 * a + 1]);
        for (int r = 0; r < half.runs; ++r) {
          const TileRun& run = half.run[r];
          if (run.out_row + a >= g.out_h) continue;
          float* dst = masked_address(plane, (run.out_row + a) * g.out_w + run.out_column);
          _mm512_mask_storeu_ps(dst, run.written[0], first);
          _mm512_mask_storeu_ps(dst + 16, run.written[1], second);
        }
      }
    }
  }
}

}  // namespace pdyolo::kernels::x86
#endif
