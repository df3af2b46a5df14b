// Intel AMX int8 convolution tile (kernels/cpu/qconv.hpp drives it): 16 output pixels of one row ×
// 32 output channels, straight from the u8 NHWC input like the VNNI kernel, with tile registers:
//   A  16 pixels × 64 bytes: 64 input channels of one tap, one row per pixel (tileloadd with the
//      input's pixel step as the row stride: no packing)
//   B  16 quads × 16 channels × 4: the packed weights of kernels/cpu/qconv.hpp read as they are
//      (a quad's 32 channels are 128 bytes: rows 128 bytes apart, channels 0–15 and 16–31)
//   C  16 × 16 int32, two of them (channels 0–15, 16–31); tdpbusd: C += A (u8) · B (s8)
// Convs whose input channels per group are a multiple of 32 (and groups = 1) take this path — 64 at a
// time, and a last 32 through tiles of half the width — the others stay on VNNI. Linux lends a process the tile data state only on request
// (arch_prctl(ARCH_REQ_XCOMP_PERM)); amx_usable() asks once and reports a refusal as "no AMX".
#pragma once
#include <cstdint>

#include "pdyolo/kernels/cpu/cpu_features.hpp"

#if defined(PDYOLO_X86_KERNELS) && defined(__linux__)
#define PDYOLO_AMX_KERNELS 1
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace pdyolo::kernels::x86 {

inline constexpr int64_t kAmxPixels = 16;

// CPUID says AMX-TILE and AMX-INT8, the OS enables the tile state in XCR0, and the kernel granted
// this process the tile data permission.
inline bool amx_usable() {
  static const bool usable = [] {
    unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
    const bool tile = (edx >> 24) & 1, int8 = (edx >> 25) & 1, osxsave = [] {
      unsigned a = 0, b = 0, c = 0, d = 0;
      return __get_cpuid(1, &a, &b, &c, &d) && ((c >> 27) & 1);
    }();
    if (!tile || !int8 || !osxsave) return false;
    unsigned xcr0_lo = 0, xcr0_hi = 0;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if (((xcr0_lo >> 17) & 3) != 3) return false;  // XTILECFG and XTILEDATA
    constexpr long kArchReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
    return syscall(SYS_arch_prctl, kArchReqXcompPerm, kXfeatureXtiledata) == 0;
  }();
  return usable;
}

// The tile configuration every AMX tile of this thread uses (loaded once per thread).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

__attribute__((target("amx-tile"))) inline void configure_amx_tiles() {
  thread_local bool configured = false;
  if (configured) return;
  AmxTileConfig cfg;
  for (int t = 0; t < 5; ++t) cfg.colsb[t] = 64, cfg.rows[t] = 16;  // C0, C1, A, B0, B1: 16 rows of 64 bytes
  cfg.colsb[5] = 32, cfg.rows[5] = 16;                               // A of 32 channels (8 quads)
  cfg.colsb[6] = cfg.colsb[7] = 64, cfg.rows[6] = cfg.rows[7] = 8;   // its B0, B1: 8 quads
  _tile_loadconfig(&cfg);
  configured = true;
}

// C0 += A · B0 and C1 += A · B1 for A (tile a) = 16 rows of the input from `from` (rows `stride`
// apart), B0 and B1 (tiles b0, b1) = the weights' channels 0–15 and 16–31 from w (rows 128 bytes
// apart). A macro, not a template: GCC's tile intrinsics paste the tile number into their assembly
// text, so it must be a literal.
#define PDYOLO_AMX_MULTIPLY(a, b0, b1, from, stride, w) \
  do {                                                   \
    _tile_loadd(a, from, stride);                        \
    _tile_loadd(b0, w, 128);                             \
    _tile_loadd(b1, (w) + 64, 128);                      \
    _tile_dpbusd(0, a, b0);                              \
    _tile_dpbusd(1, a, b1);                              \
  } while (false)

// acc[p·32 + j] = Σ_t Σ_q Σ_i origin[p·pixel_step + taps[t] + 4q + i] · w[((t·quads + q)·32 + j)·4 + i]
// for 16 pixels; quads a multiple of 8 (a last 8 goes through the 32-channel tiles 5–7).
__attribute__((target("amx-tile,amx-int8"))) inline void qconv_tile_amx_16x32(const uint8_t* origin, int64_t pixel_step, const int64_t* taps,
                                                                               int64_t tap_count, int64_t quads, const int8_t* w, int32_t* acc) {
  configure_amx_tiles();
  _tile_zero(0);
  _tile_zero(1);
  for (int64_t t = 0; t < tap_count; ++t) {
    int64_t q = 0;
    for (; q + 16 <= quads; q += 16) PDYOLO_AMX_MULTIPLY(2, 3, 4, origin + taps[t] + 4 * q, pixel_step, w + (t * quads + q) * 32 * 4);
    if (q < quads) PDYOLO_AMX_MULTIPLY(5, 6, 7, origin + taps[t] + 4 * q, pixel_step, w + (t * quads + q) * 32 * 4);  // a last 32 channels
  }
  _tile_stored(0, acc, 128);
  _tile_stored(1, acc + 16, 128);
}
#undef PDYOLO_AMX_MULTIPLY

}  // namespace pdyolo::kernels::x86
#else
namespace pdyolo::kernels::x86 {
inline bool amx_usable() { return false; }
}  // namespace pdyolo::kernels::x86
#endif
