// Reorg (space-to-depth, the reference's phase order: kernels/ref/reorg.hpp) on the CPU: output
// planes in parallel, each output row gathered from every other element of one input row.
#pragma once
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/ref/reorg.hpp"

namespace pdyolo::kernels::cpu {

// y[i, j] = x[2i + dy, 2j + dx] over one [oh, ow] output plane (and, with `back`, the reverse).
template <bool back>
void reorg_plane(int64_t h, int64_t w, int64_t dy, int64_t dx, const float* __restrict from, float* __restrict to) {
  const int64_t oh = h / 2, ow = w / 2;
  for (int64_t i = 0; i < oh; ++i) {
    const int64_t in_row = (2 * i + dy) * w + dx, out_row = i * ow;
    for (int64_t j = 0; j < ow; ++j) {
      if constexpr (back) to[in_row + 2 * j] = from[out_row + j];
      else to[out_row + j] = from[in_row + 2 * j];
    }
  }
}

// Calls fn(image, phase, channel) for every output plane, in parallel.
template <class Fn>
void for_reorg_planes(int64_t n, int64_t c, int64_t h, int64_t w, const Fn& fn) {
  const int64_t planes = n * 4 * c, grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(h * w / 4, 1));
  parallel_for(0, planes, grain, [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) fn(p / (4 * c), p / c % 4, p % c);
  });
}

inline void reorg_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y) {
  const int64_t in_plane = h * w, out_plane = (h / 2) * (w / 2);
  for_reorg_planes(n, c, h, w, [&](int64_t b, int64_t k, int64_t ch) {
    reorg_plane<false>(h, w, kReorgRow[k], kReorgColumn[k], x + (b * c + ch) * in_plane, y + ((b * 4 + k) * c + ch) * out_plane);
  });
}

// Each input element receives exactly one output element's gradient, so the phases fill dx whole.
inline void reorg_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx) {
  const int64_t in_plane = h * w, out_plane = (h / 2) * (w / 2);
  for_reorg_planes(n, c, h, w, [&](int64_t b, int64_t k, int64_t ch) {
    reorg_plane<true>(h, w, kReorgRow[k], kReorgColumn[k], dy + ((b * 4 + k) * c + ch) * out_plane, dx + (b * c + ch) * in_plane);
  });
}

}  // namespace pdyolo::kernels::cpu
