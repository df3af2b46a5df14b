// AVX-512 parts of the int8 convolution (kernels/cpu/qconv.hpp has the portable ones and the driver):
//
//   qconv_ukernel_vnni_12x32   one tile of int32 accumulators, 12 output pixels × 32 output
//                              channels, straight from the u8 NHWC input: per tap and per quad of 4
//                              input channels, each pixel's 4 levels are broadcast and multiplied
//                              with 32 channels' 4 weights by vpdpbusd (u8 × s8 summed in int32,
//                              no saturation). 24 zmm accumulators; no im2col, no input packing.
//   qconv_ukernel_avx2_12x32   the same tile for CPUs without VNNI, exact (widened to s16, vpmaddwd)
//   requantize_tile_avx2       the same for AVX2 (below)
//   requantize_tile_avx512     the tile's outputs: acc + offset, requantized per channel exactly as
//                              kernels/int8_scheme.hpp states it (64-bit products, ties toward +∞, clamp),
//                              then the activation's 256-entry table (vpermi2b), stored as u8.
#pragma once
#include <cstdint>
#include <cstring>

#include "pdyolo/kernels/cpu/cpu_features.hpp"

#ifdef PDYOLO_X86_KERNELS
#include <immintrin.h>
#endif

namespace pdyolo::kernels {

inline constexpr int64_t kQconvPixels = 12, kQconvChannels = 32;
inline constexpr int64_t kQconvMaxPixels = 16;  // the most pixels a tile hands its epilogue (AMX's 16)

#ifdef PDYOLO_X86_KERNELS
// GCC 12's 64-bit-lane intrinsics (vpmuldq, vpsravq, vpmaxsq, …) pass an undefined register as the
// unused merge source; inlined here, -Werror=(maybe-)uninitialized rejects it. Nothing is read from it.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
namespace x86 {

// acc[p·32 + j] = Σ_t Σ_q Σ_i pixels[p][taps[t] + 4q + i] · w[((t·quads + q)·32 + j)·4 + i].
__attribute__((target("avx512f,avx512bw,avx512vnni"))) inline void qconv_ukernel_vnni_12x32(const uint8_t* const* pixels, const int64_t* taps,
                                                                                            int64_t tap_count, int64_t quads, const int8_t* w,
                                                                                            int32_t* acc) {
  __m512i c[kQconvPixels][2];
  for (auto& row : c) row[0] = row[1] = _mm512_setzero_si512();
  for (int64_t t = 0; t < tap_count; ++t) {
    const uint8_t* s[kQconvPixels];
    for (int p = 0; p < kQconvPixels; ++p) s[p] = pixels[p] + taps[t];
    for (int64_t q = 0; q < quads; ++q, w += kQconvChannels * 4) {
      const __m512i w0 = _mm512_loadu_si512(w), w1 = _mm512_loadu_si512(w + 64);
      for (int p = 0; p < kQconvPixels; ++p) {
        int32_t four;
        std::memcpy(&four, s[p] + 4 * q, 4);
        const __m512i x = _mm512_set1_epi32(four);
        c[p][0] = _mm512_dpbusd_epi32(c[p][0], x, w0);
        c[p][1] = _mm512_dpbusd_epi32(c[p][1], x, w1);
      }
    }
  }
  for (int p = 0; p < kQconvPixels; ++p) {
    _mm512_storeu_si512(acc + p * kQconvChannels, c[p][0]);
    _mm512_storeu_si512(acc + p * kQconvChannels + 16, c[p][1]);
  }
}

// The AVX2 kernel, for CPUs without VNNI: the same tile, exact. vpmaddubsw would saturate (255·127·2
// > 2^15), so the levels and weights are widened to s16 and multiplied by vpmaddwd, whose pair sums
// (at most 2·255·127) fit in int32. Per quad, each pixel's 4 levels are broadcast as s16 against 4
// channels × 4 weights (vpmovsxbw of the packed s8 block): each int32 lane holds half a channel's sum,
// and vphaddd joins the halves at the end. 2 pixels × 16 channels at a time (8 accumulators).
__attribute__((target("avx2"))) inline void qconv_ukernel_avx2_12x32(const uint8_t* const* pixels, const int64_t* taps, int64_t tap_count,
                                                                     int64_t quads, const int8_t* w, int32_t* acc) {
  for (int half = 0; half < 2; ++half)
    for (int p0 = 0; p0 < kQconvPixels; p0 += 2) {
      __m256i a[2][4];
      for (auto& row : a)
        for (__m256i& v : row) v = _mm256_setzero_si256();
      const int8_t* wq = w + half * 16 * 4;
      for (int64_t t = 0; t < tap_count; ++t) {
        const uint8_t* s[2] = {pixels[p0] + taps[t], pixels[p0 + 1] + taps[t]};
        for (int64_t q = 0; q < quads; ++q, wq += kQconvChannels * 4) {
          __m256i wk[4];
          for (int k = 0; k < 4; ++k) wk[k] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(wq + 16 * k)));
          for (int p = 0; p < 2; ++p) {
            int32_t four;
            std::memcpy(&four, s[p] + 4 * q, 4);
            const __m256i x = _mm256_broadcastq_epi64(_mm_cvtepu8_epi16(_mm_cvtsi32_si128(four)));
            for (int k = 0; k < 4; ++k) a[p][k] = _mm256_add_epi32(a[p][k], _mm256_madd_epi16(x, wk[k]));
          }
        }
      }
      for (int p = 0; p < 2; ++p)
        for (int k = 0; k < 4; k += 2) {  // channels 4k … 4k + 7 of the half, in order
          const __m256i sums = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[p][k], a[p][k + 1]), 0xD8);
          _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + (p0 + p) * kQconvChannels + half * 16 + 4 * k), sums);
        }
    }
}

// The AVX2 requantization of 8 accumulators (acc + offset must fit in int32): as requantize16, with
// what AVX2 lacks built from what it has — the arithmetic 64-bit shift as a logical one of the
// value + 2^62 (|product + round| < 2^62, so it is positive and the floor is kept), the 64-bit
// clamp as compares and blends.
// 4 lanes of 64 bits: clamp(⌊x·m / 2^sh + 1/2⌋, low, high), x and m in the low halves of the lanes.
__attribute__((target("avx2"))) inline __m256i requantize_lanes_avx2(__m256i x, __m256i m, __m256i sh, __m256i low, __m256i high) {
  const __m256i one = _mm256_set1_epi64x(1), lift = _mm256_set1_epi64x(int64_t{1} << 62);
  const __m256i round = _mm256_sllv_epi64(one, _mm256_sub_epi64(sh, one));
  const __m256i lifted = _mm256_add_epi64(_mm256_add_epi64(_mm256_mul_epi32(x, m), round), lift);
  __m256i r = _mm256_sub_epi64(_mm256_srlv_epi64(lifted, sh), _mm256_srlv_epi64(lift, sh));
  r = _mm256_blendv_epi8(r, low, _mm256_cmpgt_epi64(low, r));
  return _mm256_blendv_epi8(r, high, _mm256_cmpgt_epi64(r, high));
}

__attribute__((target("avx2"))) inline __m128i requantize8_avx2(__m256i acc, const int32_t* offset, const int32_t* value, const int32_t* shift,
                                                               int32_t output_zero) {
  const __m256i a = _mm256_add_epi32(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(offset)));
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(value)), s = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(shift));
  const __m256i low32 = _mm256_set1_epi64x(0xffffffffLL);
  const __m256i low = _mm256_set1_epi64x(-output_zero), high = _mm256_set1_epi64x(255 - output_zero);
  const __m256i even = requantize_lanes_avx2(a, v, _mm256_and_si256(s, low32), low, high);
  const __m256i odd = requantize_lanes_avx2(_mm256_srli_epi64(a, 32), _mm256_srli_epi64(v, 32), _mm256_srli_epi64(s, 32), low, high);
  const __m256i both = _mm256_add_epi32(_mm256_blend_epi32(even, _mm256_slli_epi64(odd, 32), 0xAA), _mm256_set1_epi32(output_zero));
  // packus works within 128-bit halves: [x0–3, x0–3 | x4–7, x4–7] as u16; the permute joins x0–3 and x4–7.
  const __m256i words = _mm256_permute4x64_epi64(_mm256_packus_epi32(both, both), 0x08);
  return _mm_packus_epi16(_mm256_castsi256_si128(words), _mm256_castsi256_si128(words));  // bytes 0–7: the 8 levels
}

// requantize_tile_avx512's contract on AVX2; the activation's table is applied byte by byte.
__attribute__((target("avx2"))) inline void requantize_tile_avx2(const int32_t* acc, int64_t pixels, int64_t channels, const int32_t* offset,
                                                                const int32_t* value, const int32_t* shift, int32_t output_zero,
                                                                const uint8_t* table, uint8_t* dst, int64_t dst_stride) {
  for (int64_t p = 0; p < pixels; ++p) {
    alignas(16) uint8_t levels[kQconvChannels];
    for (int64_t g = 0; g * 8 < channels; ++g) {
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc + p * kQconvChannels + 8 * g));
      _mm_storel_epi64(reinterpret_cast<__m128i*>(levels + 8 * g), requantize8_avx2(a, offset + 8 * g, value + 8 * g, shift + 8 * g, output_zero));
    }
    uint8_t* out = dst + p * dst_stride;
    if (table)
      for (int64_t j = 0; j < channels; ++j) out[j] = table[levels[j]];
    else
      std::memcpy(out, levels, static_cast<size_t>(channels));
  }
}

// Per-channel requantization constants of 16 channels, in the lanes the 64-bit arithmetic needs.
struct Requant16 {
  __m512i offset, value_even, value_odd, round_even, round_odd, shift_even, shift_odd;
};

__attribute__((target("avx512f,avx512bw,avx512dq"))) inline Requant16 load_requant16(const int32_t* offset, const int32_t* value,
                                                                                       const int32_t* shift) {
  const __m512i low32 = _mm512_set1_epi64(0xffffffffLL), one = _mm512_set1_epi64(1);
  const __m512i v = _mm512_loadu_si512(value), s = _mm512_loadu_si512(shift);
  Requant16 r;
  r.offset = _mm512_loadu_si512(offset);
  r.value_even = v, r.value_odd = _mm512_srli_epi64(v, 32);
  r.shift_even = _mm512_and_si512(s, low32), r.shift_odd = _mm512_srli_epi64(s, 32);
  r.round_even = _mm512_sllv_epi64(one, _mm512_sub_epi64(r.shift_even, one));
  r.round_odd = _mm512_sllv_epi64(one, _mm512_sub_epi64(r.shift_odd, one));
  return r;
}

// 16 accumulators → 16 levels clamp(z + ⌊(acc + offset)·value / 2^shift + 1/2⌋, 0, 255); acc +
// offset must fit in int32 (the driver checks the bound per conv).
__attribute__((target("avx512f,avx512bw,avx512dq"))) inline __m128i requantize16(__m512i acc, const Requant16& r, __m512i low, __m512i high,
                                                                                  __m512i zero) {
  const __m512i a = _mm512_add_epi32(acc, r.offset);
  __m512i even = _mm512_mul_epi32(a, r.value_even), odd = _mm512_mul_epi32(_mm512_srli_epi64(a, 32), r.value_odd);
  even = _mm512_srav_epi64(_mm512_add_epi64(even, r.round_even), r.shift_even);
  odd = _mm512_srav_epi64(_mm512_add_epi64(odd, r.round_odd), r.shift_odd);
  even = _mm512_min_epi64(_mm512_max_epi64(even, low), high);  // [−z, 255 − z]: the clamp before z is added
  odd = _mm512_min_epi64(_mm512_max_epi64(odd, low), high);
  const __m512i both = _mm512_mask_blend_epi32(0xAAAA, even, _mm512_slli_epi64(odd, 32));
  return _mm512_cvtepi32_epi8(_mm512_add_epi32(both, zero));
}

// A tile's outputs (pixels ≤ 12, channels ≤ 32 of the tile's 32) → dst[p·dst_stride + j]. The
// per-channel arrays start at the tile's first channel and hold 32 entries; table: 256 levels or null.
__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx512vbmi"))) inline void requantize_tile_avx512(
    const int32_t* acc, int64_t pixels, int64_t channels, const int32_t* offset, const int32_t* value, const int32_t* shift,
    int32_t output_zero, const uint8_t* table, uint8_t* dst, int64_t dst_stride) {
  const Requant16 lo = load_requant16(offset, value, shift), hi = load_requant16(offset + 16, value + 16, shift + 16);
  const __m512i low = _mm512_set1_epi64(-output_zero), high = _mm512_set1_epi64(255 - output_zero), zero = _mm512_set1_epi32(output_zero);
  __m512i t0 = _mm512_setzero_si512(), t1 = t0, t2 = t0, t3 = t0;
  if (table) {
    t0 = _mm512_loadu_si512(table), t1 = _mm512_loadu_si512(table + 64);
    t2 = _mm512_loadu_si512(table + 128), t3 = _mm512_loadu_si512(table + 192);
  }
  const __mmask32 store_mask = channels >= 32 ? ~__mmask32{0} : (__mmask32{1} << channels) - 1;
  for (int64_t p = 0; p < pixels; ++p) {
    const __m128i a = requantize16(_mm512_loadu_si512(acc + p * kQconvChannels), lo, low, high, zero);
    const __m128i b = requantize16(_mm512_loadu_si512(acc + p * kQconvChannels + 16), hi, low, high, zero);
    __m512i levels = _mm512_castsi256_si512(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1));
    if (table) {  // levels 0–127 from t0:t1, 128–255 from t2:t3 (the top bit picks)
      const __m512i first = _mm512_permutex2var_epi8(t0, levels, t1), second = _mm512_permutex2var_epi8(t2, levels, t3);
      levels = _mm512_mask_blend_epi8(_mm512_movepi8_mask(levels), first, second);
    }
    _mm256_mask_storeu_epi8(dst + p * dst_stride, store_mask, _mm512_castsi512_si256(levels));
  }
}

}  // namespace x86
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#endif

}  // namespace pdyolo::kernels
