// ARM NEON (AArch64) SGEMM micro-kernel, same contract as the x86 ones (kernels/x86/sgemm_ukernels.hpp):
//   C[i*ldc + j] = (accumulate ? C[i*ldc + j] : 0) + Σ_k a[k*8 + i] · b[k*8 + j]
// 8 rows × 8 columns = 16 q-register accumulators; per k: 2 loads of B, 2 of A, 16 lane FMAs.
#pragma once
#include <cstdint>

#if defined(__aarch64__) && defined(__ARM_NEON)
#define PDYOLO_NEON_KERNELS 1
#include <arm_neon.h>

namespace pdyolo::kernels::neon {

inline void sgemm_ukernel_neon_8x8(int64_t kc, const float* a, const float* b, float* c, int64_t ldc,
                                   bool accumulate) {
  float32x4_t acc[8][2];
  for (auto& row : acc) row[0] = row[1] = vdupq_n_f32(0.0f);
  for (int64_t k = 0; k < kc; ++k, a += 8, b += 8) {
    const float32x4_t b0 = vld1q_f32(b), b1 = vld1q_f32(b + 4);
    const float32x4_t a0 = vld1q_f32(a), a1 = vld1q_f32(a + 4);
    acc[0][0] = vfmaq_laneq_f32(acc[0][0], b0, a0, 0); acc[0][1] = vfmaq_laneq_f32(acc[0][1], b1, a0, 0);
    acc[1][0] = vfmaq_laneq_f32(acc[1][0], b0, a0, 1); acc[1][1] = vfmaq_laneq_f32(acc[1][1], b1, a0, 1);
    acc[2][0] = vfmaq_laneq_f32(acc[2][0], b0, a0, 2); acc[2][1] = vfmaq_laneq_f32(acc[2][1], b1, a0, 2);
    acc[3][0] = vfmaq_laneq_f32(acc[3][0], b0, a0, 3); acc[3][1] = vfmaq_laneq_f32(acc[3][1], b1, a0, 3);
    acc[4][0] = vfmaq_laneq_f32(acc[4][0], b0, a1, 0); acc[4][1] = vfmaq_laneq_f32(acc[4][1], b1, a1, 0);
    acc[5][0] = vfmaq_laneq_f32(acc[5][0], b0, a1, 1); acc[5][1] = vfmaq_laneq_f32(acc[5][1], b1, a1, 1);
    acc[6][0] = vfmaq_laneq_f32(acc[6][0], b0, a1, 2); acc[6][1] = vfmaq_laneq_f32(acc[6][1], b1, a1, 2);
    acc[7][0] = vfmaq_laneq_f32(acc[7][0], b0, a1, 3); acc[7][1] = vfmaq_laneq_f32(acc[7][1], b1, a1, 3);
  }
  for (int i = 0; i < 8; ++i) {
    float* row = c + i * ldc;
    if (accumulate) {
      acc[i][0] = vaddq_f32(acc[i][0], vld1q_f32(row));
      acc[i][1] = vaddq_f32(acc[i][1], vld1q_f32(row + 4));
    }
    vst1q_f32(row, acc[i][0]);
    vst1q_f32(row + 4, acc[i][1]);
  }
}

}  // namespace pdyolo::kernels::neon
#endif
