// int8 GEMM micro-kernels: one 8×32 tile of int32 C = A (s8) · B (u8), from packed panels whose
// k runs in groups of 4 (one 32-bit lane holds 4 consecutive k of one row or column):
//   a: [kc4][8][4]   s8 — 8 rows (output channels), 4 k each
//   b: [kc4][32][4]  u8 — 32 columns (output pixels), 4 k each
//   C[i*ldc + j] = Σ_k a[k][i] · b[k][j]   (int32, exact: |Σ| < 2^31 for k < 66,000)
// The AVX-512 VNNI kernel does each group of 4 in one vpdpbusd (u8 × s8, summed in 32 bits,
// without saturation); kernels/cpu/qconv.hpp has the portable kernel and picks one at run time.
#pragma once
#include <cstdint>
#include <cstring>

#include "pdyolo/kernels/cpu/cpu_features.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>
#endif

namespace pdyolo::kernels {

inline constexpr int64_t kQgemmMr = 8, kQgemmNr = 32;

#ifdef PDYOLO_X86_KERNELS
namespace x86 {

// 16 zmm accumulators (8 rows × 2 halves of 16 columns); per group of 4 k: 2 loads of B, 8
// broadcasts of A's 4 bytes, 16 vpdpbusd.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void qgemm_ukernel_vnni_8x32(int64_t kc4, const int8_t* a, const uint8_t* b,
                                                                                           int32_t* c, int64_t ldc) {
  __m512i c00 = _mm512_setzero_si512(), c01 = _mm512_setzero_si512(), c10 = _mm512_setzero_si512(), c11 = _mm512_setzero_si512(),
          c20 = _mm512_setzero_si512(), c21 = _mm512_setzero_si512(), c30 = _mm512_setzero_si512(), c31 = _mm512_setzero_si512(),
          c40 = _mm512_setzero_si512(), c41 = _mm512_setzero_si512(), c50 = _mm512_setzero_si512(), c51 = _mm512_setzero_si512(),
          c60 = _mm512_setzero_si512(), c61 = _mm512_setzero_si512(), c70 = _mm512_setzero_si512(), c71 = _mm512_setzero_si512();
  for (int64_t k = 0; k < kc4; ++k) {
    const __m512i b0 = _mm512_loadu_si512(b), b1 = _mm512_loadu_si512(b + 64);
#define PDYOLO_ROW(i)                                                       \
  {                                                                         \
    int32_t four;                                                           \
    std::memcpy(&four, a + 4 * (i), 4);                                     \
    const __m512i ai = _mm512_set1_epi32(four);                             \
    c##i##0 = _mm512_dpbusd_epi32(c##i##0, b0, ai);                         \
    c##i##1 = _mm512_dpbusd_epi32(c##i##1, b1, ai);                         \
  }
    PDYOLO_ROW(0) PDYOLO_ROW(1) PDYOLO_ROW(2) PDYOLO_ROW(3) PDYOLO_ROW(4) PDYOLO_ROW(5) PDYOLO_ROW(6) PDYOLO_ROW(7)
#undef PDYOLO_ROW
    a += kQgemmMr * 4;
    b += kQgemmNr * 4;
  }
#define PDYOLO_STORE(i)                                                                   \
  _mm512_storeu_si512(c + (i) * ldc, c##i##0);                                            \
  _mm512_storeu_si512(c + (i) * ldc + 16, c##i##1);
  PDYOLO_STORE(0) PDYOLO_STORE(1) PDYOLO_STORE(2) PDYOLO_STORE(3) PDYOLO_STORE(4) PDYOLO_STORE(5) PDYOLO_STORE(6) PDYOLO_STORE(7)
#undef PDYOLO_STORE
}

}  // namespace x86
#endif

}  // namespace pdyolo::kernels
