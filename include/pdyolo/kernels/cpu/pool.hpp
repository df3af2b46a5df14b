// Parallel max-pooling and upsampling: the reference kernels run on disjoint ranges of planes
// (N·C), which is where these memory-bound ops get their speed on several cores.
#pragma once
#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/ref/pool.hpp"

namespace pdyolo::kernels::cpu {

// Calls fn(first_plane, plane_count) over disjoint ranges, sized so each carries enough work.
template <class Fn>
void for_plane_ranges(int64_t planes, int64_t elements_per_plane, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(elements_per_plane, 1));
  parallel_for(0, planes, grain, [&](int64_t lo, int64_t hi) { fn(lo, hi - lo); });
}

inline void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, int64_t* argmax) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
    Pool2dGeometry part = g;
    part.planes = count;
    ref::max_pool2d_forward(part, x + first * in_plane, y + first * out_plane, argmax + first * out_plane);
  });
}

inline void max_pool2d_backward(const Pool2dGeometry& g, const float* dy, const int64_t* argmax, float* dx) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
    Pool2dGeometry part = g;
    part.planes = count;
    ref::max_pool2d_backward(part, dy + first * out_plane, argmax + first * out_plane, dx + first * in_plane);
  });
}

inline void upsample_nearest_forward(int64_t planes, int64_t in_h, int64_t in_w, int64_t scale, const float* x, float* y) {
  const int64_t in_plane = in_h * in_w, out_plane = in_plane * scale * scale;
  for_plane_ranges(planes, out_plane, [&](int64_t first, int64_t count) {
    ref::upsample_nearest_forward(count, in_h, in_w, scale, x + first * in_plane, y + first * out_plane);
  });
}

inline void upsample_nearest_backward(int64_t planes, int64_t in_h, int64_t in_w, int64_t scale, const float* dy, float* dx) {
  const int64_t in_plane = in_h * in_w, out_plane = in_plane * scale * scale;
  for_plane_ranges(planes, out_plane, [&](int64_t first, int64_t count) {
    ref::upsample_nearest_backward(count, in_h, in_w, scale, dy + first * out_plane, dx + first * in_plane);
  });
}

}  // namespace pdyolo::kernels::cpu
