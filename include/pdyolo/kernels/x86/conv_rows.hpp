// AVX-512 parts of the phase-row convolution (kernels/cpu/conv_rows.hpp): filling the phase rows
// of one input row, and the 8×32 tile that reads its B rows straight from them.
#pragma once
#include <algorithm>
#include <cstdint>

#include "pdyolo/kernels/x86/gemm_pack.hpp"
#include "pdyolo/kernels/x86/sgemm_ukernels.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// The 32 floats low (0 … 15) and high (16 … 31) split into their even and odd elements, 16 each.
__attribute__((target("avx512f"))) inline void split_even_odd_avx512(__m512 low, __m512 high, __m512& even, __m512& odd) {
  const __m512i even_lanes = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odd_lanes = _mm512_add_epi32(even_lanes, _mm512_set1_epi32(1));
  even = _mm512_permutex2var_ps(low, even_lanes, high);
  odd = _mm512_permutex2var_ps(low, odd_lanes, high);
}

// even[i] = src[2i], odd[i] = src[2i + 1] for i < count; src holds 2·count floats.
__attribute__((target("avx512f"))) inline void deinterleave_avx512(const float* src, int64_t count, float* even, float* odd) {
  int64_t i = 0;
  for (; i + 16 <= count; i += 16) {
    __m512 e, o;
    split_even_odd_avx512(_mm512_loadu_ps(src + 2 * i), _mm512_loadu_ps(src + 2 * i + 16), e, o);
    _mm512_storeu_ps(even + i, e);
    _mm512_storeu_ps(odd + i, o);
  }
  for (; i < count; ++i) even[i] = src[2 * i], odd[i] = src[2 * i + 1];
}

// One tile of 8 output channels × 16·V output columns (V = 1 or 2) of a convolution row, one K block:
//   t[i][j] = Σ_k a[k · 8 + i] · rows[offset[k] + j]      (k < kc, i < 8, j < 16·V)
//   y[i · ldy + j] = (accumulate ? y[i · ldy + j] : 0) + t[i][j], then act(· + bias[i]) if finish
// a: the strip's packed weights for the block [kc][8]; rows + offset[k]: patch element k's inputs.
// Only the first `out_rows` rows and `out_cols` columns are stored (the rest of the tile is padding).
template <int V>
__attribute__((target("avx512f"))) inline void conv_rows_tile_avx512(int64_t kc, const float* a, const float* rows,
                                                                      const int32_t* offset, bool accumulate, bool finish,
                                                                      const float* bias, ActivationFn act, int64_t out_rows,
                                                                      int64_t out_cols, float* y, int64_t ldy) {
  static_assert(V == 1 || V == 2, "a tile is 16 or 32 columns wide");
  __m512 acc[8][V];
  for (int i = 0; i < 8; ++i)
    for (int v = 0; v < V; ++v) acc[i][v] = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const float* b = rows + offset[k];
    __m512 bv[V];
    for (int v = 0; v < V; ++v) bv[v] = _mm512_loadu_ps(b + 16 * v);
    for (int i = 0; i < 8; ++i) {
      const __m512 ai = _mm512_set1_ps(a[i]);
      for (int v = 0; v < V; ++v) acc[i][v] = _mm512_fmadd_ps(ai, bv[v], acc[i][v]);
    }
    a += 8;
  }
  __mmask16 lanes[V];
  for (int v = 0; v < V; ++v) lanes[v] = first_lanes(std::max<int64_t>(out_cols - 16 * v, 0));
  for (int i = 0; i < 8 && i < out_rows; ++i) {
    const __m512 b = _mm512_set1_ps(bias && finish ? bias[i] : 0.0f);
    for (int v = 0; v < V; ++v) {
      float* out = y + i * ldy + 16 * v;
      __m512 t = acc[i][v];
      if (accumulate) t = _mm512_add_ps(t, _mm512_maskz_loadu_ps(lanes[v], out));
      if (finish) t = activate_avx512(_mm512_add_ps(t, b), act);
      _mm512_mask_storeu_ps(out, lanes[v], t);
    }
  }
}

}  // namespace pdyolo::kernels::x86
#endif
