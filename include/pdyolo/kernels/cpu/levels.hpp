// The int8 executor's steps other than convolution, on one image of u8 levels in NHWC (U8Image:
// each pixel's channels contiguous): max-pool, nearest upsampling and ReOrg move levels unchanged
// (they share their input's quantizer), a concat slice is a copy, and a residual add sums levels at
// one (s, z) and requantizes to its own. Bit-exact against the integer reference (quant/integer.hpp).
#pragma once
#include <algorithm>
#include <cstring>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/cpu/qconv.hpp"
#include "pdyolo/kernels/int8_scheme.hpp"
#include "pdyolo/kernels/ref/pool.hpp"
#include "pdyolo/kernels/ref/reorg.hpp"

namespace pdyolo::kernels::cpu {

// acc[c] = max(acc[c], x[c]) (distinct buffers: restrict lets the compiler vectorize it).
inline void max_into(uint8_t* __restrict acc, const uint8_t* __restrict x, int64_t channels) {
  for (int64_t c = 0; c < channels; ++c) acc[c] = std::max(acc[c], x[c]);
}

// Max-pool over g.planes channels (padding: the window's pixels inside the image only — levels are
// ≥ 0, so that is the padded −∞ maximum), separable: a column maximum over the window's rows first.
inline void max_pool2d_levels(const Pool2dGeometry& g, const U8Image& src, const U8Image& dst) {
  const int64_t channels = g.planes;
  parallel_tasks(g.out_h, [&](int64_t oy) {
    const int64_t y0 = std::max<int64_t>(oy * g.stride_h - g.pad_h, 0), y1 = std::min<int64_t>(oy * g.stride_h - g.pad_h + g.kernel_h, g.in_h);
    thread_local std::vector<uint8_t> column_max;  // per input column: the maximum over the window's rows
    column_max.assign(static_cast<size_t>(g.in_w * channels), 0);
    for (int64_t y = y0; y < y1; ++y)
      for (int64_t x = 0; x < g.in_w; ++x) max_into(column_max.data() + x * channels, src.at(y, x), channels);
    thread_local std::vector<uint8_t> window;
    window.resize(static_cast<size_t>(channels));
    for (int64_t ox = 0; ox < g.out_w; ++ox) {
      const int64_t x0 = std::max<int64_t>(ox * g.stride_w - g.pad_w, 0), x1 = std::min<int64_t>(ox * g.stride_w - g.pad_w + g.kernel_w, g.in_w);
      std::fill(window.begin(), window.end(), 0);
      for (int64_t x = x0; x < x1; ++x) max_into(window.data(), column_max.data() + x * channels, channels);
      std::memcpy(dst.at(oy, ox), window.data(), window.size());
    }
  });
}

// Nearest upsampling by `scale` to out_h × out_w.
inline void upsample_nearest_levels(int64_t channels, int64_t out_h, int64_t out_w, int64_t scale, const U8Image& src, const U8Image& dst) {
  parallel_tasks(out_h, [&](int64_t y) {
    for (int64_t x = 0; x < out_w; ++x) std::memcpy(dst.at(y, x), src.at(y / scale, x / scale), static_cast<size_t>(channels));
  });
}

// Space-to-depth of an in_h × in_w image (even sizes): output pixel (i, j) holds, phase by phase
// (kernels/ref/reorg.hpp), the channels of input pixel (2i + dy, 2j + dx).
inline void reorg_levels(int64_t channels, int64_t in_h, int64_t in_w, const U8Image& src, const U8Image& dst) {
  parallel_tasks(in_h / 2, [&](int64_t y) {
    for (int64_t x = 0; x < in_w / 2; ++x)
      for (int64_t k = 0; k < 4; ++k)
        std::memcpy(dst.at(y, x) + k * channels, src.at(2 * y + kReorgRow[k], 2 * x + kReorgColumn[k]), static_cast<size_t>(channels));
  });
}

// Copies an h × w image's `channels` levels (a concat input into its slice).
inline void copy_levels(int64_t channels, int64_t h, int64_t w, const U8Image& src, const U8Image& dst) {
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) std::memcpy(dst.at(y, x), src.at(y, x), static_cast<size_t>(channels));
}

// A residual add: Σ (level − in_zero) over the `count` inputs, requantized by m to out_zero.
inline void add_levels(int64_t channels, int64_t h, int64_t w, const U8Image* src, int64_t count, int32_t in_zero, quant::Multiplier m,
                       int32_t out_zero, const U8Image& dst) {
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      for (int64_t c = 0; c < channels; ++c) {
        int32_t acc = 0;
        for (int64_t j = 0; j < count; ++j) acc += static_cast<int32_t>(src[j].at(y, x)[c]) - in_zero;
        dst.at(y, x)[c] = quant::requantize_to_u8(acc, m, out_zero);
      }
}

}  // namespace pdyolo::kernels::cpu
