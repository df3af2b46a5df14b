// AVX-512 packing of GEMM operands for the 8×32 micro-kernel when a copy is not enough: the panels
// are k-major, so an operand whose rows run along k (the weight gradient's dy and patches, the
// forward's weights) must be transposed on the way. 16×16 blocks are loaded row by row, transposed
// in registers and stored k-major; the portable packers in kernels/cpu/sgemm.hpp do the same one
// element at a time.
#pragma once
#include <algorithm>
#include <cstdint>

#include "pdyolo/kernels/cpu/cpu_features.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// The full mask: the masked forms of the shuffles below are used because GCC 12 warns about the
// undefined pass-through operand of the unmasked ones (-Wmaybe-uninitialized).
constexpr __mmask16 kAll = 0xFFFF;

// Interleaves the element pairs (64-bit halves) of a and b within each 128-bit quarter.
__attribute__((target("avx512f"))) inline __m512 pairs_lo(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_maskz_unpacklo_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}
__attribute__((target("avx512f"))) inline __m512 pairs_hi(__m512 a, __m512 b) {
  return _mm512_castpd_ps(_mm512_maskz_unpackhi_pd(0xFF, _mm512_castps_pd(a), _mm512_castps_pd(b)));
}

// r[i][j] → r[j][i] for a 16×16 block held in 16 registers: pairs of rows interleaved by element,
// then by element pair, then 128-bit quarters exchanged.
__attribute__((target("avx512f"))) inline void transpose_16x16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int p = 0; p < 8; ++p) {
    t[2 * p] = _mm512_maskz_unpacklo_ps(kAll, r[2 * p], r[2 * p + 1]);
    t[2 * p + 1] = _mm512_maskz_unpackhi_ps(kAll, r[2 * p], r[2 * p + 1]);
  }
  for (int q = 0; q < 4; ++q) {  // u[4q + m], quarter L: rows 4q … 4q+3 of column 4L + m
    u[4 * q] = pairs_lo(t[4 * q], t[4 * q + 2]);
    u[4 * q + 1] = pairs_hi(t[4 * q], t[4 * q + 2]);
    u[4 * q + 2] = pairs_lo(t[4 * q + 1], t[4 * q + 3]);
    u[4 * q + 3] = pairs_hi(t[4 * q + 1], t[4 * q + 3]);
  }
  for (int m = 0; m < 4; ++m) {
    const __m512 w0 = _mm512_maskz_shuffle_f32x4(kAll, u[m], u[4 + m], 0x44), w1 = _mm512_maskz_shuffle_f32x4(kAll, u[m], u[4 + m], 0xEE);
    const __m512 x0 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + m], u[12 + m], 0x44);
    const __m512 x1 = _mm512_maskz_shuffle_f32x4(kAll, u[8 + m], u[12 + m], 0xEE);
    r[m] = _mm512_maskz_shuffle_f32x4(kAll, w0, x0, 0x88);
    r[4 + m] = _mm512_maskz_shuffle_f32x4(kAll, w0, x0, 0xDD);
    r[8 + m] = _mm512_maskz_shuffle_f32x4(kAll, w1, x1, 0x88);
    r[12 + m] = _mm512_maskz_shuffle_f32x4(kAll, w1, x1, 0xDD);
  }
}

// The mask of lanes [0, n), n ≥ 0 (all 16 from n = 16 on).
inline __mmask16 first_lanes(int64_t n) { return n >= 16 ? __mmask16(0xFFFF) : static_cast<__mmask16>((1u << n) - 1); }

// Loads `rows` rows (the others zero) of up to 16 elements (`count`) from src, row stride ld, and
// transposes them: r[k] holds element k of every row.
__attribute__((target("avx512f"))) inline void load_transposed(const float* src, int64_t ld, int64_t rows, int64_t count,
                                                                __m512 r[16]) {
  const __mmask16 mask = first_lanes(count);
  for (int i = 0; i < 16; ++i) r[i] = i < rows ? _mm512_maskz_loadu_ps(mask, src + i * ld) : _mm512_setzero_ps();
  transpose_16x16(r);
}

// Packs rows [k0, k0 + kc) and columns [col0, col0 + cols) of a row-major B (row stride ldb; a 1×1
// convolution's input) as 32-column panels, the last one zero-padded.
__attribute__((target("avx512f"))) inline void pack_rows_avx512(const float* b, int64_t ldb, int64_t k0, int64_t kc, int64_t col0,
                                                                 int64_t cols, float* out) {
  for (int64_t q = 0; q * 32 < cols; ++q) {
    const int64_t n = std::min<int64_t>(32, cols - q * 32);
    const __mmask16 low = first_lanes(n), high = n > 16 ? first_lanes(n - 16) : 0;
    const float* src = b + k0 * ldb + col0 + q * 32;
    float* panel = out + q * kc * 32;
    for (int64_t k = 0; k < kc; ++k, src += ldb) {
      _mm512_storeu_ps(panel + k * 32, _mm512_maskz_loadu_ps(low, src));
      _mm512_storeu_ps(panel + k * 32 + 16, high ? _mm512_maskz_loadu_ps(high, src + 16) : _mm512_setzero_ps());
    }
  }
}

// Panels of B[k0 .. k0 + kc, col0 .. col0 + cols) for B[k][j] = s[j·lds + k] (B stored transposed:
// its columns are rows of s), 32 columns per panel, the last one zero-padded (PackB's layout),
// panel q at out + q · panel_stride (kc · 32 for PackB; more when these rows are part of taller panels).
__attribute__((target("avx512f"))) inline void pack_transposed_panels_avx512(const float* s, int64_t lds, int64_t k0, int64_t kc,
                                                                              int64_t col0, int64_t cols, float* out,
                                                                              int64_t panel_stride) {
  for (int64_t q = 0; q * 32 < cols; ++q)
    for (int64_t half = 0; half < 2; ++half) {
      const int64_t j = q * 32 + half * 16, rows = std::clamp<int64_t>(cols - j, 0, 16);
      float* dst = out + q * panel_stride + half * 16;
      for (int64_t kb = 0; kb < kc; kb += 16) {
        __m512 r[16];
        const int64_t count = std::min<int64_t>(16, kc - kb);
        load_transposed(s + (col0 + j) * lds + k0 + kb, lds, rows, count, r);
        for (int64_t k = 0; k < count; ++k) _mm512_storeu_ps(dst + (kb + k) * 32, r[k]);
      }
    }
}

// One strip of 8 rows of a row-major A (row stride lda) for the K block [k0, k0 + kc), k-major:
// out[k·8 + i] = A[row0 + i][k0 + k], rows past `rows` zero.
__attribute__((target("avx512f"))) inline void pack_a_strip_rows_avx512(const float* a, int64_t lda, int64_t row0, int64_t rows,
                                                                         int64_t k0, int64_t kc, float* out) {
  for (int64_t kb = 0; kb < kc; kb += 16) {
    __m512 r[16];
    const int64_t count = std::min<int64_t>(16, kc - kb);
    load_transposed(a + row0 * lda + k0 + kb, lda, std::min<int64_t>(rows, 8), count, r);
    for (int64_t k = 0; k < count; ++k) _mm512_mask_storeu_ps(out + (kb + k) * 8, 0x00FF, r[k]);
  }
}

// The same strip when A is stored column-major (A[i][k] = a[k·lda + i]): 8 consecutive floats per k.
__attribute__((target("avx512f"))) inline void pack_a_strip_columns_avx512(const float* a, int64_t lda, int64_t row0, int64_t rows,
                                                                            int64_t k0, int64_t kc, float* out) {
  const __mmask16 mask = first_lanes(std::min<int64_t>(rows, 8));
  for (int64_t k = 0; k < kc; ++k)
    _mm512_mask_storeu_ps(out + k * 8, 0x00FF, _mm512_maskz_loadu_ps(mask, a + (k0 + k) * lda + row0));
}

}  // namespace pdyolo::kernels::x86
#endif
