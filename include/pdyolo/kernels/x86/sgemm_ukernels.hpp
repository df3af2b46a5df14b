// x86 SGEMM micro-kernels. Each computes one MR×NR tile of C from packed panels:
//   a: [kc][MR]  (MR rows of A, k-major)      b: [kc][NR]  (NR columns of B, k-major)
//   C[i*ldc + j] = (accumulate ? C[i*ldc + j] : 0) + Σ_k a[k*MR + i] · b[k*NR + j]
// They are compiled for their instruction set with target attributes, so the library needs no
// -march flag; the driver (kernels/cpu/sgemm.hpp) calls one only after checking the CPU has it.
#pragma once
#include <cstdint>

#include "pdyolo/kernels/cpu/cpu_features.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>

namespace pdyolo::kernels::x86 {

// AVX-512: 8 rows × 32 columns = 16 zmm accumulators; per k: 2 loads of B, 8 broadcasts of A.
__attribute__((target("avx512f"))) inline void sgemm_ukernel_avx512_8x32(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m512 c00 = _mm512_setzero_ps(), c01 = _mm512_setzero_ps(), c10 = _mm512_setzero_ps(),
         c11 = _mm512_setzero_ps(), c20 = _mm512_setzero_ps(), c21 = _mm512_setzero_ps(),
         c30 = _mm512_setzero_ps(), c31 = _mm512_setzero_ps(), c40 = _mm512_setzero_ps(),
         c41 = _mm512_setzero_ps(), c50 = _mm512_setzero_ps(), c51 = _mm512_setzero_ps(),
         c60 = _mm512_setzero_ps(), c61 = _mm512_setzero_ps(), c70 = _mm512_setzero_ps(),
         c71 = _mm512_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#define PDYOLO_ROW(i)                                  \
  {                                                    \
    const __m512 ai = _mm512_set1_ps(a[i]);            \
    c##i##0 = _mm512_fmadd_ps(ai, b0, c##i##0);        \
    c##i##1 = _mm512_fmadd_ps(ai, b1, c##i##1);        \
  }
    PDYOLO_ROW(0) PDYOLO_ROW(1) PDYOLO_ROW(2) PDYOLO_ROW(3)
    PDYOLO_ROW(4) PDYOLO_ROW(5) PDYOLO_ROW(6) PDYOLO_ROW(7)
#undef PDYOLO_ROW
    a += 8;
    b += 32;
  }
#define PDYOLO_STORE(i)                                                                   \
  {                                                                                       \
    float* row = c + (i) * ldc;                                                           \
    if (accumulate) {                                                                     \
      c##i##0 = _mm512_add_ps(c##i##0, _mm512_loadu_ps(row));                            \
      c##i##1 = _mm512_add_ps(c##i##1, _mm512_loadu_ps(row + 16));                       \
    }                                                                                     \
    _mm512_storeu_ps(row, c##i##0);                                                       \
    _mm512_storeu_ps(row + 16, c##i##1);                                                  \
  }
  PDYOLO_STORE(0) PDYOLO_STORE(1) PDYOLO_STORE(2) PDYOLO_STORE(3)
  PDYOLO_STORE(4) PDYOLO_STORE(5) PDYOLO_STORE(6) PDYOLO_STORE(7)
#undef PDYOLO_STORE
}

// AVX2 + FMA: 6 rows × 16 columns = 12 ymm accumulators; per k: 2 loads of B, 6 broadcasts of A.
__attribute__((target("avx2,fma"))) inline void sgemm_ukernel_avx2_6x16(
    int64_t kc, const float* a, const float* b, float* c, int64_t ldc, bool accumulate) {
  __m256 c00 = _mm256_setzero_ps(), c01 = _mm256_setzero_ps(), c10 = _mm256_setzero_ps(),
         c11 = _mm256_setzero_ps(), c20 = _mm256_setzero_ps(), c21 = _mm256_setzero_ps(),
         c30 = _mm256_setzero_ps(), c31 = _mm256_setzero_ps(), c40 = _mm256_setzero_ps(),
         c41 = _mm256_setzero_ps(), c50 = _mm256_setzero_ps(), c51 = _mm256_setzero_ps();
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#define PDYOLO_ROW(i)                                  \
  {                                                    \
    const __m256 ai = _mm256_broadcast_ss(a + (i));    \
    c##i##0 = _mm256_fmadd_ps(ai, b0, c##i##0);        \
    c##i##1 = _mm256_fmadd_ps(ai, b1, c##i##1);        \
  }
    PDYOLO_ROW(0) PDYOLO_ROW(1) PDYOLO_ROW(2) PDYOLO_ROW(3) PDYOLO_ROW(4) PDYOLO_ROW(5)
#undef PDYOLO_ROW
    a += 6;
    b += 16;
  }
#define PDYOLO_STORE(i)                                                                   \
  {                                                                                       \
    float* row = c + (i) * ldc;                                                           \
    if (accumulate) {                                                                     \
      c##i##0 = _mm256_add_ps(c##i##0, _mm256_loadu_ps(row));                            \
      c##i##1 = _mm256_add_ps(c##i##1, _mm256_loadu_ps(row + 8));                        \
    }                                                                                     \
    _mm256_storeu_ps(row, c##i##0);                                                       \
    _mm256_storeu_ps(row + 8, c##i##1);                                                   \
  }
  PDYOLO_STORE(0) PDYOLO_STORE(1) PDYOLO_STORE(2) PDYOLO_STORE(3) PDYOLO_STORE(4) PDYOLO_STORE(5)
#undef PDYOLO_STORE
}

}  // namespace pdyolo::kernels::x86
#endif
