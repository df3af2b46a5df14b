// x86 SGEMM micro-kernels. Each computes one MR×NR tile of C from packed panels:
//   a: [kc][MR]  (MR rows of A, k-major)      b: [kc][NR]  (NR columns of B, k-major)
//   C[i*ldc + j] = (accumulate ? C[i*ldc + j] : 0) + Σ_k a[k*MR + i] · b[k*NR + j]
// They are compiled for their instruction set with target attributes, so the library needs no
// -march flag; the driver (kernels/cpu/sgemm.hpp) calls one only after checking the CPU has it.
#pragma once
#include <cstdint>

#include "pdyolo/kernels/activation.hpp"
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
  // The tile of C is written at the end: fetch its 16 lines now, so the stores find them in cache
  // (each row sits on another page, out of reach of the hardware prefetcher).
  for (int i = 0; i < 8; ++i) {
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + 16), _MM_HINT_T0);
  }
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

// ---- tile epilogues: C tile ← act(C tile + bias[row]) for a finished MR×NR tile ----------------
// SiLU needs e^x on whole vectors: range reduction x = n·ln2 + r (n rounded to nearest), Cephes'
// degree-6 polynomial for e^r, then · 2ⁿ. Within 2 ulp of std::exp on [-87, 88] (clamped there).
constexpr float kExpLog2e = 1.44269504088896341f, kExpLn2Hi = 0.693359375f, kExpLn2Lo = -2.12194440e-4f;
constexpr float kExpPoly[6] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f, 1.6666665459e-1f, 5.0000001201e-1f};

// (The masked forms with every lane set: GCC 12 warns -Wmaybe-uninitialized about the unmasked
// max/min/roundscale/scalef, whose headers pass an undefined source vector.)
constexpr __mmask16 kAllLanes = 0xFFFF;

__attribute__((target("avx512f"))) inline __m512 exp_avx512(__m512 x) {
  x = _mm512_mask_max_ps(x, kAllLanes, x, _mm512_set1_ps(-87.0f));
  x = _mm512_mask_min_ps(x, kAllLanes, x, _mm512_set1_ps(88.0f));
  const __m512 t = _mm512_mul_ps(x, _mm512_set1_ps(kExpLog2e));
  const __m512 n = _mm512_mask_roundscale_ps(t, kAllLanes, t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kExpLn2Lo), _mm512_fnmadd_ps(n, _mm512_set1_ps(kExpLn2Hi), x));
  __m512 p = _mm512_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpPoly[i]));
  p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  return _mm512_mask_scalef_ps(p, kAllLanes, p, n);  // p · 2ⁿ
}

__attribute__((target("avx2,fma"))) inline __m256 exp_avx2(__m256 x) {
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.0f)), _mm256_set1_ps(88.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kExpLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kExpLn2Hi), x));
  __m256 p = _mm256_set1_ps(kExpPoly[0]);
  for (int i = 1; i < 6; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpPoly[i]));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(exponent));  // p · 2ⁿ
}

// act(v) on one vector. The switch is per vector: the branch always goes the same way within a tile.
__attribute__((target("avx512f"))) inline __m512 activate_avx512(__m512 v, ActivationFn act) {
  switch (act.kind) {
    case Activation::identity: return v;
    case Activation::relu: return _mm512_mask_max_ps(v, kAllLanes, v, _mm512_setzero_ps());
    case Activation::leaky_relu:
      return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LE_OQ), v, _mm512_set1_ps(act.slope));
    case Activation::silu:
      return _mm512_div_ps(v, _mm512_add_ps(_mm512_set1_ps(1.0f), exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), v))));
  }
  return v;
}

__attribute__((target("avx2,fma"))) inline __m256 activate_avx2(__m256 v, ActivationFn act) {
  switch (act.kind) {
    case Activation::identity: return v;
    case Activation::relu: return _mm256_max_ps(v, _mm256_setzero_ps());
    case Activation::leaky_relu:
      return _mm256_blendv_ps(v, _mm256_mul_ps(v, _mm256_set1_ps(act.slope)), _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LE_OQ));
    case Activation::silu:
      return _mm256_div_ps(v, _mm256_add_ps(_mm256_set1_ps(1.0f), exp_avx2(_mm256_sub_ps(_mm256_setzero_ps(), v))));
  }
  return v;
}

// σ(x) = 1 / (1 + e^−x) on 16 lanes.
__attribute__((target("avx512f"))) inline __m512 sigmoid_lanes_avx512(__m512 x) {
  const __m512 one = _mm512_set1_ps(1.0f);
  return _mm512_div_ps(one, _mm512_add_ps(one, exp_avx512(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

// out[i] = σ(in[i]) over an array (the detection head's scores), 16 lanes at a time.
__attribute__((target("avx512f"))) inline void sigmoid_avx512(const float* in, float* out, int64_t n) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) _mm512_storeu_ps(out + i, sigmoid_lanes_avx512(_mm512_loadu_ps(in + i)));
  if (i < n) {
    const __mmask16 tail = static_cast<__mmask16>((1u << (n - i)) - 1u);
    _mm512_mask_storeu_ps(out + i, tail, sigmoid_lanes_avx512(_mm512_maskz_loadu_ps(tail, in + i)));
  }
}

// C tile ← act(C tile + bias[row]) for a finished 8×32 (AVX-512) or 6×16 (AVX2) tile.
__attribute__((target("avx512f"))) inline void sgemm_epilogue_avx512_8x32(float* c, int64_t ldc, const float* bias, ActivationFn act) {
  for (int i = 0; i < 8; ++i) {
    const __m512 b = _mm512_set1_ps(bias ? bias[i] : 0.0f);
    float* row = c + i * ldc;
    _mm512_storeu_ps(row, activate_avx512(_mm512_add_ps(_mm512_loadu_ps(row), b), act));
    _mm512_storeu_ps(row + 16, activate_avx512(_mm512_add_ps(_mm512_loadu_ps(row + 16), b), act));
  }
}

__attribute__((target("avx2,fma"))) inline void sgemm_epilogue_avx2_6x16(float* c, int64_t ldc, const float* bias, ActivationFn act) {
  for (int i = 0; i < 6; ++i) {
    const __m256 b = _mm256_set1_ps(bias ? bias[i] : 0.0f);
    float* row = c + i * ldc;
    _mm256_storeu_ps(row, activate_avx2(_mm256_add_ps(_mm256_loadu_ps(row), b), act));
    _mm256_storeu_ps(row + 8, activate_avx2(_mm256_add_ps(_mm256_loadu_ps(row + 8), b), act));
  }
}

}  // namespace pdyolo::kernels::x86
#endif
