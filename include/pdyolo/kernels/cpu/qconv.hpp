// int8 convolution, direct on u8 NHWC images: no im2col, no packing of the input.
//
//   input    U8Image: pixel (y, x), channel c at origin[y·row_stride + x·pixel_stride + c]. The
//            caller keeps the input's zero point in a border of `padding` pixels around it (so the
//            padding contributes (z − z)·w = 0 like the definition's) and 3 readable bytes past
//            every pixel's channels (the weights' last quad of input channels is padded with 0s).
//   weights  packed once (pack_qconv_weights): per group, blocks of 32 output channels, each
//            [taps][quads][32][4] — taps = k·k, quads = input channels of the group in fours —
//            plus each output channel's Σ w, what a zero point costs: Σ (x − z)·w = Σ x·w − z·Σ w.
//   tiles    12 consecutive output pixels (AMX: 16) × one 32-channel block; the micro-kernel
//            (AVX-512 VNNI, AMX or AVX2; NEON sdot or plain NEON; else portable C++) gives their
//            int32 Σ x·w, and the epilogue turns the tile into outputs, named by plain data
//            (QConvOutput, at the end of this file): requantized u8 levels (per-channel
//            requantization and the activation's table, into any NHWC layout — a concat's channel
//            slice included), dequantized float maps, or their σ straight into the decoded boxes'
//            rows (the detect head). qconv2d_tiles, the loop itself, hands tiles to a callback
//            (tests read the accumulators through it).
//
// Tasks are (group, 12 consecutive output pixels in row-major order): a tile may span two rows (or
// more, for rows under 12 pixels), and its epilogue is called once per row; the last tile reuses its
// last pixel for the missing ones (computed, not stored). (AMX tiles are 16 pixels of one row: the
// tile loads need one stride.) The arithmetic is exact, so the result does not depend on the
// kernel, the thread count or the order.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "pdyolo/core/error.hpp"
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/neon/qconv_ukernels.hpp"
#include "pdyolo/kernels/x86/qconv_amx.hpp"
#include "pdyolo/kernels/x86/qconv_ukernels.hpp"
#include "pdyolo/kernels/cpu/elementwise.hpp"
#include "pdyolo/kernels/int8_scheme.hpp"

namespace pdyolo::kernels::cpu {

#ifdef PDYOLO_X86_KERNELS
// The micro-kernel's vpdpbusd and the epilogue's 64-bit lanes and byte permutes.
inline bool cpu_has_avx512_vnni() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vbmi");
  return has;
}
inline bool cpu_has_avx2() {
  static const bool has = __builtin_cpu_supports("avx2");
  return has;
}
#else
inline bool cpu_has_avx512_vnni() { return false; }
inline bool cpu_has_avx2() { return false; }
#endif

#ifdef PDYOLO_NEON_KERNELS
inline bool cpu_has_neon_dotprod() { return neon::cpu_has_dotprod(); }
inline constexpr bool kHasNeon = true;
#else
inline bool cpu_has_neon_dotprod() { return false; }
inline constexpr bool kHasNeon = false;
#endif

// amx: AMX tiles for the convs that fit them (x86/qconv_amx.hpp: 32k input channels), AVX-512 VNNI for the others.
enum class QconvIsa { generic, avx2, avx512_vnni, amx, neon, neon_dotprod };
inline constexpr QconvIsa kQconvIsas[] = {QconvIsa::generic, QconvIsa::avx2,         QconvIsa::avx512_vnni,
                                          QconvIsa::amx,     QconvIsa::neon, QconvIsa::neon_dotprod};

inline bool qconv_isa_available(QconvIsa isa) {
  switch (isa) {
    case QconvIsa::generic: return true;
    case QconvIsa::avx2: return cpu_has_avx2();
    case QconvIsa::avx512_vnni: return cpu_has_avx512_vnni();
    case QconvIsa::amx: return cpu_has_avx512_vnni() && x86::amx_usable();
    case QconvIsa::neon: return kHasNeon;
    case QconvIsa::neon_dotprod: return cpu_has_neon_dotprod();
  }
  return false;
}
// The fastest kernel this CPU has.
inline QconvIsa best_qconv_isa() {
  for (QconvIsa isa : {QconvIsa::amx, QconvIsa::avx512_vnni, QconvIsa::neon_dotprod, QconvIsa::avx2, QconvIsa::neon})
    if (qconv_isa_available(isa)) return isa;
  return QconvIsa::generic;
}
inline const char* qconv_isa_name(QconvIsa isa) {
  switch (isa) {
    case QconvIsa::avx512_vnni: return "avx512-vnni 12x32";
    case QconvIsa::amx: return "amx 16x32 (+ avx512-vnni)";
    case QconvIsa::avx2: return "avx2 12x32";
    case QconvIsa::neon_dotprod: return "neon-sdot 12x32";
    case QconvIsa::neon: return "neon 12x32";
    case QconvIsa::generic: break;
  }
  return "generic 12x32";
}

struct QConvGeometry {
  int64_t in_channels = 0, height = 0, width = 0;  // of the input
  int64_t out_channels = 0, kernel = 1, stride = 1, padding = 0, groups = 1;
  int64_t out_height() const { return (height + 2 * padding - kernel) / stride + 1; }
  int64_t out_width() const { return (width + 2 * padding - kernel) / stride + 1; }
  int64_t in_per_group() const { return in_channels / groups; }
  int64_t out_per_group() const { return out_channels / groups; }
};

struct U8Image {
  uint8_t* origin = nullptr;  // pixel (0, 0), channel 0
  int64_t pixel_stride = 0, row_stride = 0;
  uint8_t* at(int64_t y, int64_t x) const { return origin + y * row_stride + x * pixel_stride; }
};

struct PackedQConvWeights {
  int64_t out_channels = 0, groups = 1, in_per_group = 0, kernel = 1, quads = 0, blocks_per_group = 0;
  std::vector<int8_t> blocks;        // [groups][blocks_per_group][kernel²][quads][32][4]
  std::vector<int32_t> weight_sums;  // [out_channels] Σ w
  int64_t block_size() const { return kernel * kernel * quads * kQconvChannels * 4; }
  const int8_t* block(int64_t group, int64_t b) const { return blocks.data() + (group * blocks_per_group + b) * block_size(); }
};

// w [out, in / groups, k, k] s8.
inline PackedQConvWeights pack_qconv_weights(const int8_t* w, int64_t out_channels, int64_t in_per_group, int64_t kernel, int64_t groups) {
  PDYOLO_CHECK(groups >= 1 && out_channels % groups == 0, "qconv: ", out_channels, " output channels in ", groups, " groups");
  PackedQConvWeights p;
  p.out_channels = out_channels, p.groups = groups, p.in_per_group = in_per_group, p.kernel = kernel, p.quads = (in_per_group + 3) / 4;
  const int64_t per_group = out_channels / groups, taps = kernel * kernel;
  p.blocks_per_group = (per_group + kQconvChannels - 1) / kQconvChannels;
  p.blocks.assign(static_cast<size_t>(groups * p.blocks_per_group * p.block_size()), 0);
  p.weight_sums.assign(static_cast<size_t>(out_channels), 0);
  for (int64_t o = 0; o < out_channels; ++o) {
    const int64_t g = o / per_group, b = (o % per_group) / kQconvChannels, j = o % per_group % kQconvChannels;
    int8_t* dst = p.blocks.data() + (g * p.blocks_per_group + b) * p.block_size();
    for (int64_t ci = 0; ci < in_per_group; ++ci)
      for (int64_t t = 0; t < taps; ++t) {
        const int8_t v = w[(o * in_per_group + ci) * taps + t];
        dst[((t * p.quads + ci / 4) * kQconvChannels + j) * 4 + ci % 4] = v;
        p.weight_sums[static_cast<size_t>(o)] += v;
      }
  }
  return p;
}

// Requantization of a conv's outputs, per output channel c (arrays padded with 32 entries past the
// last channel, so that a tile may read a whole block):
//   level = table[clamp(z + ⌊(acc + offset_c)·value_c / 2^shift_c + 1/2⌋, 0, 255)]
// where acc is the tile's Σ x·w and offset_c = bias_c − z_x·Σ w_c (kernels/int8_scheme.hpp's arithmetic).
struct QConvRequant {
  std::vector<int64_t> offset;          // [out + 32]
  std::vector<int32_t> value, shift;    // [out + 32]
  int32_t output_zero = 0;
  std::array<uint8_t, 256> table{};     // the activation's levels, when use_table
  bool use_table = false;
  bool fits_int32 = false;              // |Σ x·w| + |offset| < 2^31 for every channel: the vector path applies
  std::vector<int32_t> offset32;        // offset as int32 when fits_int32
};

// bias [out] int32, multipliers as (value, shift) [out]; w the conv's packed weights and its input zero point.
inline QConvRequant make_qconv_requant(const PackedQConvWeights& w, int32_t input_zero, const std::vector<int32_t>& bias,
                                       const std::vector<std::pair<int32_t, int32_t>>& multipliers, int32_t output_zero,
                                       const uint8_t* table = nullptr) {
  QConvRequant r;
  const size_t n = static_cast<size_t>(w.out_channels) + kQconvChannels;
  r.offset.assign(n, 0), r.value.assign(n, 0), r.shift.assign(n, 1), r.offset32.assign(n, 0);
  r.output_zero = output_zero, r.fits_int32 = true;
  if (table) std::copy(table, table + 256, r.table.begin()), r.use_table = true;
  const int64_t per_channel_max = w.in_per_group * w.kernel * w.kernel * 255 * 127;  // |Σ x·w| at most
  for (size_t c = 0; c < static_cast<size_t>(w.out_channels); ++c) {
    r.offset[c] = static_cast<int64_t>(bias[c]) - static_cast<int64_t>(input_zero) * w.weight_sums[c];
    r.value[c] = multipliers[c].first, r.shift[c] = multipliers[c].second;
    r.fits_int32 = r.fits_int32 && per_channel_max + std::abs(r.offset[c]) < (int64_t{1} << 31);
    r.offset32[c] = static_cast<int32_t>(std::clamp<int64_t>(r.offset[c], INT32_MIN, INT32_MAX));
  }
  return r;
}

// The level of one accumulator: int8_scheme.hpp's requantization itself, on acc + offset.
inline uint8_t requantize_level(const QConvRequant& r, int64_t c, int32_t acc) {
  const auto total = static_cast<int32_t>(std::clamp<int64_t>(acc + r.offset[static_cast<size_t>(c)], INT32_MIN, INT32_MAX));
  const uint8_t level = quant::requantize_to_u8(total, {r.value[static_cast<size_t>(c)], r.shift[static_cast<size_t>(c)]}, r.output_zero);
  return r.use_table ? r.table[level] : level;
}

// acc [pixels][32] of channels first_channel… (channels ≤ 32) → dst[p·dst_stride + j].
inline void requantize_tile(const QConvRequant& r, const int32_t* acc, int64_t pixels, int64_t first_channel, int64_t channels, uint8_t* dst,
                            int64_t dst_stride, QconvIsa isa) {
#ifdef PDYOLO_X86_KERNELS
  if ((isa == QconvIsa::avx512_vnni || isa == QconvIsa::amx) && r.fits_int32) {
    const size_t c = static_cast<size_t>(first_channel);
    x86::requantize_tile_avx512(acc, pixels, channels, r.offset32.data() + c, r.value.data() + c, r.shift.data() + c, r.output_zero,
                                r.use_table ? r.table.data() : nullptr,
                                dst, dst_stride);
    return;
  }
  if (isa == QconvIsa::avx2 && r.fits_int32) {
    const size_t c = static_cast<size_t>(first_channel);
    x86::requantize_tile_avx2(acc, pixels, channels, r.offset32.data() + c, r.value.data() + c, r.shift.data() + c, r.output_zero,
                              r.use_table ? r.table.data() : nullptr, dst, dst_stride);
    return;
  }
#endif
  (void)isa;
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t j = 0; j < channels; ++j) dst[p * dst_stride + j] = requantize_level(r, first_channel + j, acc[p * kQconvChannels + j]);
}

inline void qconv_ukernel_generic_12x32(const uint8_t* const* pixels, const int64_t* taps, int64_t tap_count, int64_t quads, const int8_t* w,
                                        int32_t* acc) {
  std::fill(acc, acc + kQconvPixels * kQconvChannels, 0);
  for (int64_t t = 0; t < tap_count; ++t)
    for (int64_t q = 0; q < quads; ++q, w += kQconvChannels * 4)
      for (int64_t p = 0; p < kQconvPixels; ++p) {
        const uint8_t* x = pixels[p] + taps[t] + 4 * q;
        for (int64_t j = 0; j < kQconvChannels; ++j)
          for (int64_t i = 0; i < 4; ++i) acc[p * kQconvChannels + j] += static_cast<int32_t>(x[i]) * w[j * 4 + i];
      }
}

// What becomes of one tile: acc[p·32 + j] = Σ x·w of output pixel (oy, ox0 + p) and output channel
// first_channel + j, for p < pixels (≤ kQconvMaxPixels) and j < channels.
using QConvEpilogue = std::function<void(int64_t oy, int64_t ox0, int64_t pixels, int64_t first_channel, int64_t channels, const int32_t* acc)>;

#ifdef PDYOLO_AMX_KERNELS
// The AMX path (groups 1, input channels a multiple of 32, rows of at least 16 pixels): segments of
// 16 pixels; a row's last segment is moved left to end at the row's end, and hands its epilogue only
// the pixels the previous segment did not.
inline void qconv2d_amx(const U8Image& x, const QConvGeometry& g, const PackedQConvWeights& w, const std::vector<int64_t>& taps,
                        const QConvEpilogue& epilogue) {
  const int64_t oh = g.out_height(), ow = g.out_width(), segments = (ow + x86::kAmxPixels - 1) / x86::kAmxPixels;
  parallel_tasks(oh * segments, [&](int64_t task) {
    const int64_t oy = task / segments, start = task % segments * x86::kAmxPixels, ox0 = std::min(start, ow - x86::kAmxPixels);
    const int64_t skip = start - ox0;
    const uint8_t* origin = x.at(oy * g.stride - g.padding, ox0 * g.stride - g.padding);
    alignas(64) int32_t acc[x86::kAmxPixels * kQconvChannels];
    for (int64_t b = 0; b < w.blocks_per_group; ++b) {
      x86::qconv_tile_amx_16x32(origin, g.stride * x.pixel_stride, taps.data(), static_cast<int64_t>(taps.size()), w.quads, w.block(0, b), acc);
      const int64_t c0 = b * kQconvChannels;
      epilogue(oy, ox0 + skip, x86::kAmxPixels - skip, c0, std::min(kQconvChannels, g.out_channels - c0), acc + skip * kQconvChannels);
    }
  });
}
#endif

// The tile loop: epilogue(…) for every tile of accumulators. Executors call qconv2d below, whose
// output is plain data; this form is for it and for tests that read the accumulators.
inline void qconv2d_tiles(const U8Image& x, const QConvGeometry& g, const PackedQConvWeights& w, const QConvEpilogue& epilogue,
                          QconvIsa isa = best_qconv_isa()) {
  PDYOLO_CHECK(w.out_channels == g.out_channels && w.groups == g.groups && w.in_per_group == g.in_per_group() && w.kernel == g.kernel,
               "qconv: the packed weights are for another conv");
  PDYOLO_CHECK(qconv_isa_available(isa), "qconv: this CPU cannot run the ", qconv_isa_name(isa), " kernel");
  std::vector<int64_t> taps;
  for (int64_t ky = 0; ky < g.kernel; ++ky)
    for (int64_t kx = 0; kx < g.kernel; ++kx) taps.push_back(ky * x.row_stride + kx * x.pixel_stride);
#ifdef PDYOLO_AMX_KERNELS
  if (isa == QconvIsa::amx && g.groups == 1 && g.in_per_group() % 32 == 0 && g.out_width() >= x86::kAmxPixels)
    return qconv2d_amx(x, g, w, taps, epilogue);
#endif
  auto kernel = qconv_ukernel_generic_12x32;
#ifdef PDYOLO_X86_KERNELS
  if (isa == QconvIsa::avx512_vnni || isa == QconvIsa::amx) kernel = x86::qconv_ukernel_vnni_12x32;
  if (isa == QconvIsa::avx2) kernel = x86::qconv_ukernel_avx2_12x32;
#endif
#ifdef PDYOLO_NEON_KERNELS
  if (isa == QconvIsa::neon_dotprod) kernel = neon::qconv_ukernel_sdot_12x32;
  if (isa == QconvIsa::neon) kernel = neon::qconv_ukernel_armv8_12x32;
#endif
  // sdot's Σ (x − 128)·w, plus 128·Σ w: Σ x·w (the kernels' contract).
  const int32_t level_bias = isa == QconvIsa::neon_dotprod ? 128 : 0;
  const int64_t ow = g.out_width(), pixels_out = g.out_height() * ow, tiles = (pixels_out + kQconvPixels - 1) / kQconvPixels;
  parallel_tasks(g.groups * tiles, [&](int64_t task) {
    const int64_t group = task / tiles, first_pixel = task % tiles * kQconvPixels, count = std::min(kQconvPixels, pixels_out - first_pixel);
    const uint8_t* pixels[kQconvPixels];
    for (int64_t p = 0; p < kQconvPixels; ++p) {
      const int64_t q = first_pixel + std::min(p, count - 1), oy = q / ow, ox = q % ow;
      pixels[p] = x.at(oy * g.stride - g.padding, ox * g.stride - g.padding) + group * g.in_per_group();
    }
    alignas(64) int32_t acc[kQconvPixels * kQconvChannels];
    for (int64_t b = 0; b < w.blocks_per_group; ++b) {
      kernel(pixels, taps.data(), static_cast<int64_t>(taps.size()), w.quads, w.block(group, b), acc);
      const int64_t first = b * kQconvChannels, c0 = group * g.out_per_group() + first, channels = std::min(kQconvChannels, g.out_per_group() - first);
      if (level_bias)
        for (int64_t p = 0; p < kQconvPixels; ++p)
          for (int64_t j = 0; j < channels; ++j) acc[p * kQconvChannels + j] += level_bias * w.weight_sums[static_cast<size_t>(c0 + j)];
      for (int64_t p = 0; p < count;) {  // one epilogue per output row the tile touches
        const int64_t oy = (first_pixel + p) / ow, ox = (first_pixel + p) % ow, run = std::min(count - p, ow - ox);
        epilogue(oy, ox, run, c0, channels, acc + p * kQconvChannels);
        p += run;
      }
    }
  });
}

// What a quantized conv writes, as plain data — no callback — so that every backend can implement
// the same entry (per image; acc + offset is the accumulator with the input's zero point and the
// bias folded in, QConvRequant):
//   requantize               u8 levels at `levels`: z + M·(acc + offset), through the activation's
//                            table when it has one (requantize_tile)
//   dequantize               float maps [C, OH, OW] at `maps`: float(clamp(acc + offset, int32)) ·
//                            scale[c] (the detect head's convs)
//   dequantize_sigmoid_rows  σ of the same, into the decoded boxes' rows of this level at `rows`
//                            ([na, OH, OW, no], channel a·no + k → row (a, y, x), column k); the
//                            box transform follows in the detect step
struct QConvOutput {
  enum class Kind { requantize, dequantize, dequantize_sigmoid_rows };
  Kind kind = Kind::requantize;
  const QConvRequant* requant = nullptr;  // offsets (all kinds); multipliers, zero point and table (requantize)
  U8Image levels;                         // requantize
  const float* scale = nullptr;           // dequantize*: s_x · s_w per output channel
  float* maps = nullptr;                  // dequantize
  float* rows = nullptr;                  // dequantize_sigmoid_rows
  int64_t outputs_per_anchor = 0;         // dequantize_sigmoid_rows: no
};

// A tile's float values: float(clamp(acc + offset, int32)) · scale per channel (the reference's
// arithmetic), pixel-major so that the loop over channels vectorizes.
inline void dequantize_tile(const QConvRequant& requant, const float* dequant_scale, int64_t out_channels, const int32_t* acc, int64_t pixels,
                            int64_t c0, float (&tile)[kQconvMaxPixels][kQconvChannels]) {
  const int64_t* offset = requant.offset.data() + c0;
  float scale[kQconvChannels] = {};
  std::copy(dequant_scale + c0, dequant_scale + std::min<int64_t>(c0 + kQconvChannels, out_channels), scale);
  if (requant.fits_int32) {  // acc + offset fits in int32: the same values, in a loop that vectorizes
    const int32_t* offset32 = requant.offset32.data() + c0;
    for (int64_t p = 0; p < pixels; ++p)
      for (int64_t j = 0; j < kQconvChannels; ++j) tile[p][j] = static_cast<float>(acc[p * kQconvChannels + j] + offset32[j]) * scale[j];
    return;
  }
  for (int64_t p = 0; p < pixels; ++p)
    for (int64_t j = 0; j < kQconvChannels; ++j) {
      const int64_t total = std::clamp<int64_t>(acc[p * kQconvChannels + j] + offset[j], INT32_MIN, INT32_MAX);
      tile[p][j] = static_cast<float>(static_cast<int32_t>(total)) * scale[j];
    }
}

// One image's quantized conv into `out` (see QConvOutput).
inline void qconv2d(const U8Image& x, const QConvGeometry& g, const PackedQConvWeights& w, const QConvOutput& out, QconvIsa isa = best_qconv_isa()) {
  PDYOLO_CHECK(out.requant, "qconv: no requantization constants");
  PDYOLO_CHECK(out.kind == QConvOutput::Kind::requantize ? out.levels.origin != nullptr
                                                         : out.scale && (out.kind == QConvOutput::Kind::dequantize ? out.maps != nullptr
                                                                                                                    : out.rows && out.outputs_per_anchor > 0),
               "qconv: the output names no destination for its kind");
  const QConvRequant& requant = *out.requant;
  const int64_t oh = g.out_height(), ow = g.out_width();
  switch (out.kind) {
    case QConvOutput::Kind::requantize:
      return qconv2d_tiles(x, g, w, [&](int64_t oy, int64_t ox0, int64_t pixels, int64_t c0, int64_t channels, const int32_t* acc) {
        requantize_tile(requant, acc, pixels, c0, channels, out.levels.at(oy, ox0) + c0, out.levels.pixel_stride, isa);
      }, isa);
    case QConvOutput::Kind::dequantize:
      return qconv2d_tiles(x, g, w, [&](int64_t oy, int64_t ox0, int64_t pixels, int64_t c0, int64_t channels, const int32_t* acc) {
        float tile[kQconvMaxPixels][kQconvChannels];
        dequantize_tile(requant, out.scale, g.out_channels, acc, pixels, c0, tile);
        for (int64_t j = 0; j < channels; ++j) {
          float* dst = out.maps + ((c0 + j) * oh + oy) * ow + ox0;
          for (int64_t p = 0; p < pixels; ++p) dst[p] = tile[p][j];
        }
      }, isa);
    case QConvOutput::Kind::dequantize_sigmoid_rows: {
      const int64_t no = out.outputs_per_anchor;
      return qconv2d_tiles(x, g, w, [&](int64_t oy, int64_t ox0, int64_t pixels, int64_t c0, int64_t channels, const int32_t* acc) {
        float tile[kQconvMaxPixels][kQconvChannels], score[kQconvChannels];
        dequantize_tile(requant, out.scale, g.out_channels, acc, pixels, c0, tile);
        for (int64_t p = 0; p < pixels; ++p) {
          sigmoid_row(tile[p], score, channels);  // (elementwise: the same bits as over whole rows)
          for (int64_t j = 0; j < channels;) {  // runs of channels of one anchor: consecutive outputs of one box row
            const int64_t a = (c0 + j) / no, k = (c0 + j) % no, run = std::min(channels - j, no - k);
            std::memcpy(out.rows + ((a * oh + oy) * ow + ox0 + p) * no + k, score + j, static_cast<size_t>(run) * sizeof(float));
            j += run;
          }
        }
      }, isa);
    }
  }
}

}  // namespace pdyolo::kernels::cpu
