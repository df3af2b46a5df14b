// ARM NEON (AArch64) int8 conv micro-kernels, the contract of kernels/x86/qconv_ukernels.hpp: one
// tile of int32 acc[p·32 + j] = Σ_t Σ_q Σ_i pixels[p][taps[t] + 4q + i] · w[((t·quads + q)·32 + j)·4 + i]
// for 12 pixels × 32 channels, u8 levels × s8 weights, 4 pixels × 16 channels at a time.
//
//   sdot (armv8.2-a dot product)  sdot multiplies s8 by s8, so each level goes in as x − 128 (its top
//       bit flipped) and the kernel returns Σ (x − 128)·w; the driver (kernels/cpu/qconv.hpp) adds
//       128·Σ w back, which makes it Σ x·w exactly. vdotq_laneq_s32 multiplies 4 channels' 4 weights
//       by one pixel's 4 levels.
//   plain armv8 (no dot product)  levels and weights widened to s16 (vld4 de-interleaves the 4 input
//       channels of a quad), multiplied and accumulated into int32 by vmlal_lane_s16.
#pragma once
#include <cstdint>
#include <cstring>

#if defined(__aarch64__) && defined(__ARM_NEON)
#define PDYOLO_NEON_KERNELS 1
#include <arm_neon.h>
#include <asm/hwcap.h>
#include <sys/auxv.h>

namespace pdyolo::kernels::neon {

inline constexpr int kTilePixels = 12, kTileChannels = 32;

inline bool cpu_has_dotprod() {
  static const bool has = (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
  return has;
}

// The 4 levels of a quad, as 32 bits.
inline uint32_t quad_of(const uint8_t* x) {
  uint32_t four;
  std::memcpy(&four, x, 4);
  return four;
}

__attribute__((target("arch=armv8.2-a+dotprod"))) inline void qconv_ukernel_sdot_12x32(const uint8_t* const* pixels, const int64_t* taps,
                                                                                        int64_t tap_count, int64_t quads, const int8_t* w,
                                                                                        int32_t* acc) {
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (int half = 0; half < 2; ++half)
    for (int p0 = 0; p0 < kTilePixels; p0 += 4) {
      int32x4_t c[4][4];  // [pixel][4 channels]
      for (auto& row : c)
        for (int32x4_t& v : row) v = vdupq_n_s32(0);
      const int8_t* wq = w + half * 16 * 4;
      for (int64_t t = 0; t < tap_count; ++t) {
        const uint8_t* s[4] = {pixels[p0] + taps[t], pixels[p0 + 1] + taps[t], pixels[p0 + 2] + taps[t], pixels[p0 + 3] + taps[t]};
        for (int64_t q = 0; q < quads; ++q, wq += kTileChannels * 4) {
          uint32x4_t four = vdupq_n_u32(quad_of(s[0] + 4 * q));
          four = vsetq_lane_u32(quad_of(s[1] + 4 * q), four, 1);
          four = vsetq_lane_u32(quad_of(s[2] + 4 * q), four, 2);
          four = vsetq_lane_u32(quad_of(s[3] + 4 * q), four, 3);
          const int8x16_t x = vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(four), flip));
          for (int g = 0; g < 4; ++g) {
            const int8x16_t wg = vld1q_s8(wq + 16 * g);
            c[0][g] = vdotq_laneq_s32(c[0][g], wg, x, 0);
            c[1][g] = vdotq_laneq_s32(c[1][g], wg, x, 1);
            c[2][g] = vdotq_laneq_s32(c[2][g], wg, x, 2);
            c[3][g] = vdotq_laneq_s32(c[3][g], wg, x, 3);
          }
        }
      }
      for (int p = 0; p < 4; ++p)
        for (int g = 0; g < 4; ++g) vst1q_s32(acc + (p0 + p) * kTileChannels + half * 16 + 4 * g, c[p][g]);
    }
}

inline void qconv_ukernel_armv8_12x32(const uint8_t* const* pixels, const int64_t* taps, int64_t tap_count, int64_t quads, const int8_t* w,
                                      int32_t* acc) {
  for (int half = 0; half < 2; ++half)
    for (int p0 = 0; p0 < kTilePixels; p0 += 4) {
      int32x4_t c[4][4];  // [pixel][4 channels]
      for (auto& row : c)
        for (int32x4_t& v : row) v = vdupq_n_s32(0);
      const int8_t* wq = w + half * 16 * 4;
      for (int64_t t = 0; t < tap_count; ++t) {
        const uint8_t* s[4] = {pixels[p0] + taps[t], pixels[p0 + 1] + taps[t], pixels[p0 + 2] + taps[t], pixels[p0 + 3] + taps[t]};
        for (int64_t q = 0; q < quads; ++q, wq += kTileChannels * 4) {
          int16x8_t wk[2][4];  // [8 channels][input channel k of the quad]: 8 channels' weights
          for (int e = 0; e < 2; ++e) {
            const int8x8x4_t v = vld4_s8(wq + 32 * e);  // de-interleaved: v.val[k] = channels 8e … 8e + 7 at k
            for (int k = 0; k < 4; ++k) wk[e][k] = vmovl_s8(v.val[k]);
          }
          for (int p = 0; p < 4; ++p) {
            const int16x4_t x = vget_low_s16(vreinterpretq_s16_u16(vmovl_u8(vcreate_u8(quad_of(s[p] + 4 * q)))));
            for (int e = 0; e < 2; ++e) {
              c[p][2 * e] = vmlal_lane_s16(c[p][2 * e], vget_low_s16(wk[e][0]), x, 0);
              c[p][2 * e + 1] = vmlal_lane_s16(c[p][2 * e + 1], vget_high_s16(wk[e][0]), x, 0);
              c[p][2 * e] = vmlal_lane_s16(c[p][2 * e], vget_low_s16(wk[e][1]), x, 1);
              c[p][2 * e + 1] = vmlal_lane_s16(c[p][2 * e + 1], vget_high_s16(wk[e][1]), x, 1);
              c[p][2 * e] = vmlal_lane_s16(c[p][2 * e], vget_low_s16(wk[e][2]), x, 2);
              c[p][2 * e + 1] = vmlal_lane_s16(c[p][2 * e + 1], vget_high_s16(wk[e][2]), x, 2);
              c[p][2 * e] = vmlal_lane_s16(c[p][2 * e], vget_low_s16(wk[e][3]), x, 3);
              c[p][2 * e + 1] = vmlal_lane_s16(c[p][2 * e + 1], vget_high_s16(wk[e][3]), x, 3);
            }
          }
        }
      }
      for (int p = 0; p < 4; ++p)
        for (int g = 0; g < 4; ++g) vst1q_s32(acc + (p0 + p) * kTileChannels + half * 16 + 4 * g, c[p][g]);
    }
}

}  // namespace pdyolo::kernels::neon
#endif
