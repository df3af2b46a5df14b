// Parallel max-pooling and upsampling: the reference kernels run on disjoint ranges of planes
// (N·C), which is where these memory-bound ops get their speed on several cores.
#pragma once
#include <algorithm>
#include <limits>
#include <vector>

#include "pdyolo/core/parallel.hpp"
#include "pdyolo/kernels/cpu/window.hpp"
#include "pdyolo/kernels/ref/pool.hpp"

namespace pdyolo::kernels::cpu {

// Calls fn(first_plane, plane_count) over disjoint ranges, sized so each carries enough work.
template <class Fn>
void for_plane_ranges(int64_t planes, int64_t elements_per_plane, const Fn& fn) {
  const int64_t grain = std::max<int64_t>(1, (1 << 14) / std::max<int64_t>(elements_per_plane, 1));
  parallel_for(0, planes, grain, [&](int64_t lo, int64_t hi) { fn(lo, hi - lo); });
}

// Whether the window is YOLOv7's MP: 2×2, stride 2, no padding (each input element in at most one window).
inline bool is_pool_2x2_stride_2(const Pool2dGeometry& g) {
  return g.kernel_h == 2 && g.kernel_w == 2 && g.stride_h == 2 && g.stride_w == 2 && g.pad_h == 0 && g.pad_w == 0;
}

// The 2×2, stride-2 max of planes [first, first + count): each output reads two adjacent pairs of
// two input rows, with no bounds to check. With `argmax`, also the index of the first maximum in
// row-major order (as the reference: a later element wins only when strictly greater).
inline void max_pool2d_2x2_planes(const Pool2dGeometry& g, int64_t first, int64_t count, const float* x, float* y,
                                  int32_t* argmax) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w, w = g.in_w;
  for (int64_t p = first; p < first + count; ++p)
    for (int64_t oh = 0; oh < g.out_h; ++oh) {
      const float* top = x + p * in_plane + 2 * oh * w;
      const float* bottom = top + w;
      float* out = y + p * out_plane + oh * g.out_w;
      if (!argmax) {
        for (int64_t ow = 0; ow < g.out_w; ++ow)
          out[ow] = std::max(std::max(top[2 * ow], top[2 * ow + 1]), std::max(bottom[2 * ow], bottom[2 * ow + 1]));
        continue;
      }
      int32_t* arg = argmax + p * out_plane + oh * g.out_w;
      for (int64_t ow = 0; ow < g.out_w; ++ow) {
        const auto at = static_cast<int32_t>(2 * oh * w + 2 * ow);
        float best = top[2 * ow];
        int32_t index = at;
        if (top[2 * ow + 1] > best) best = top[2 * ow + 1], index = at + 1;
        if (bottom[2 * ow] > best) best = bottom[2 * ow], index = at + static_cast<int32_t>(w);
        if (bottom[2 * ow + 1] > best) best = bottom[2 * ow + 1], index = at + static_cast<int32_t>(w) + 1;
        out[ow] = best;
        arg[ow] = index;
      }
    }
}

// Whether the windows move by 1 and keep the plane's size (YOLOv7's SP: k×k windows, padding k/2).
inline bool is_pool_same_size(const Pool2dGeometry& g) {
  return g.stride_h == 1 && g.stride_w == 1 && g.out_h == g.in_h && g.out_w == g.in_w;
}

// Max-pooling of planes [first, first + count) where is_pool_same_size, separable like the general
// case below (the maximum over each window's columns for every row, then over its rows), but with
// each pass a few loops over whole planes, which vectorise: for kernel column kw every element reads
// its neighbour at the constant offset kw − pad (valid where that stays inside the row), for kernel
// row kh the row max at offset (kh − pad)·W (valid where that stays inside the plane). The general
// case's loops run one row long, 10 elements on SPP's 10×10 planes, and took 3–5× the time. With
// `argmax` (training), also the reference's index of the first maximum, as the general case.
inline void max_pool2d_same_size_planes(const Pool2dGeometry& g, int64_t first, int64_t count, const float* x, float* y,
                                        int32_t* argmax) {
  const int64_t W = g.in_w, plane = g.in_h * g.in_w;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  thread_local std::vector<int32_t> column, row_arg;  // each element's column; the index of its row max
  thread_local std::vector<float> row_max;
  column.resize(static_cast<size_t>(plane));
  row_arg.resize(column.size());
  row_max.resize(column.size());
  for (int64_t i = 0; i < plane; ++i) column[i] = static_cast<int32_t>(i % W);
  for (int64_t p = first; p < first + count; ++p) {
    const float* in = x + p * plane;
    float* out = y + p * plane;
    float* h = row_max.data();
    int32_t* h_arg = row_arg.data();
    const int32_t* col = column.data();
    if (argmax) std::fill(h_arg, h_arg + plane, -1);
    else std::fill(h, h + plane, kLowest);
    for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
      const int64_t d = kw - g.pad_w, lo = std::max<int64_t>(0, -d), hi = std::min(plane, plane - d);
      const auto d32 = static_cast<int32_t>(d), w32 = static_cast<int32_t>(W);
      if (argmax) {
        for (int64_t i = lo; i < hi; ++i) {
          const float v = in[i + d];
          const int32_t c = col[i] + d32;
          const bool better = (c >= 0) & (c < w32) & ((h_arg[i] < 0) | (v > h[i]));
          h[i] = better ? v : h[i];
          h_arg[i] = better ? static_cast<int32_t>(i) + d32 : h_arg[i];
        }
      } else {
        for (int64_t i = lo; i < hi; ++i) {
          const float v = in[i + d];  // loaded unconditionally: a conditional load would keep the loop scalar
          const int32_t c = col[i] + d32;
          h[i] = ((c >= 0) & (c < w32)) ? std::max(h[i], v) : h[i];
        }
      }
    }
    int32_t* arg = argmax ? argmax + p * plane : nullptr;
    if (arg) std::fill(arg, arg + plane, -1);
    else std::fill(out, out + plane, kLowest);
    for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
      const int64_t d = (kh - g.pad_h) * W, lo = std::max<int64_t>(0, -d), hi = std::min(plane, plane - d);
      if (arg) {
        for (int64_t j = lo; j < hi; ++j) {
          const float v = h[j + d];
          const int32_t index = h_arg[j + d];  // as above
          const bool better = (arg[j] < 0) | (v > out[j]);
          out[j] = better ? v : out[j];
          arg[j] = better ? index : arg[j];
        }
      } else {
        for (int64_t j = lo; j < hi; ++j) out[j] = std::max(out[j], h[j + d]);
      }
    }
  }
}

// Max-pooling without argmax (inference), as two separable passes per plane: the maximum over each
// window's columns for every input row, then over each window's rows. k_h + k_w comparisons per
// output instead of k_h · k_w, and both passes run along contiguous rows (vectorised). Same values
// as the reference.
inline void max_pool2d_inference(const Pool2dGeometry& g, const float* x, float* y) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  constexpr float kLowest = -std::numeric_limits<float>::infinity();
  if (is_pool_2x2_stride_2(g))
    return for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
      max_pool2d_2x2_planes(g, first, count, x, y, nullptr);
    });
  if (is_pool_same_size(g))
    return for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
      max_pool2d_same_size_planes(g, first, count, x, y, nullptr);
    });
  for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
    thread_local std::vector<float> row_max;  // [in_h, out_w], reused across calls
    row_max.resize(static_cast<size_t>(g.in_h * g.out_w));
    for (int64_t p = first; p < first + count; ++p) {
      const float* in = x + p * in_plane;
      float* out = y + p * out_plane;
      std::fill(row_max.begin(), row_max.end(), kLowest);
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const auto [lo, hi] = valid_outputs(g.in_w, g.out_w, g.stride_w, kw - g.pad_w);
        const int64_t offset = kw - g.pad_w, stride = g.stride_w;
        for (int64_t ih = 0; ih < g.in_h; ++ih) {
          float* h = row_max.data() + ih * g.out_w;
          const float* src = in + ih * g.in_w + offset;
          for (int64_t ow = lo; ow < hi; ++ow) h[ow] = std::max(h[ow], src[ow * stride]);
        }
      }
      std::fill(out, out + out_plane, kLowest);
      for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
        const auto [lo, hi] = valid_outputs(g.in_h, g.out_h, g.stride_h, kh - g.pad_h);
        for (int64_t oh = lo; oh < hi; ++oh) {
          const float* h = row_max.data() + (oh * g.stride_h + kh - g.pad_h) * g.out_w;
          float* o = out + oh * g.out_w;
          for (int64_t ow = 0; ow < g.out_w; ++ow) o[ow] = std::max(o[ow], h[ow]);
        }
      }
    }
  });
}

// Max-pooling with the argmax (training), separable like max_pool2d_inference: for every input row
// the first column holding each window's row maximum, then the first of those rows holding the
// window's maximum — which is the reference's first maximum in row-major order. Same values and
// indices as the reference for inputs without NaN (the reference keeps a NaN only as a window's
// first element; a row pass starting with one would hide the rest of its row). Small windows
// (2×2 and the like) gain nothing from separating: YOLOv7's MP has its own loop, others run the
// reference loop.
inline void max_pool2d_forward(const Pool2dGeometry& g, const float* x, float* y, int32_t* argmax) {
  const int64_t in_plane = g.in_h * g.in_w, out_plane = g.out_h * g.out_w;
  if (is_pool_2x2_stride_2(g))
    return for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
      max_pool2d_2x2_planes(g, first, count, x, y, argmax);
    });
  if (is_pool_same_size(g))
    return for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
      max_pool2d_same_size_planes(g, first, count, x, y, argmax);
    });
  if (g.kernel_h * g.kernel_w <= 4) {
    for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
      Pool2dGeometry part = g;
      part.planes = count;
      ref::max_pool2d_forward(part, x + first * in_plane, y + first * out_plane, argmax + first * out_plane);
    });
    return;
  }
  for_plane_ranges(g.planes, in_plane, [&](int64_t first, int64_t count) {
    thread_local std::vector<float> row_max;    // [in_h, out_w], reused across calls
    thread_local std::vector<int32_t> row_arg;  // input column of each row maximum (-1: none yet)
    row_max.resize(static_cast<size_t>(g.in_h * g.out_w));
    row_arg.resize(row_max.size());
    for (int64_t p = first; p < first + count; ++p) {
      const float* in = x + p * in_plane;
      float* out = y + p * out_plane;
      int32_t* arg = argmax + p * out_plane;
      std::fill(row_arg.begin(), row_arg.end(), -1);
      for (int64_t kw = 0; kw < g.kernel_w; ++kw) {
        const auto [lo, hi] = valid_outputs(g.in_w, g.out_w, g.stride_w, kw - g.pad_w);
        const int64_t offset = kw - g.pad_w, stride = g.stride_w;
        for (int64_t ih = 0; ih < g.in_h; ++ih) {
          float* best = row_max.data() + ih * g.out_w;
          int32_t* column = row_arg.data() + ih * g.out_w;
          const float* src = in + ih * g.in_w + offset;
          for (int64_t ow = lo; ow < hi; ++ow) {
            const float v = src[ow * stride];
            const bool better = column[ow] < 0 || v > best[ow];
            best[ow] = better ? v : best[ow];
            column[ow] = better ? static_cast<int32_t>(ow * stride + offset) : column[ow];
          }
        }
      }
      std::fill(arg, arg + out_plane, -1);
      for (int64_t kh = 0; kh < g.kernel_h; ++kh) {
        const auto [lo, hi] = valid_outputs(g.in_h, g.out_h, g.stride_h, kh - g.pad_h);
        for (int64_t oh = lo; oh < hi; ++oh) {
          const int64_t ih = oh * g.stride_h + kh - g.pad_h;
          const float* best = row_max.data() + ih * g.out_w;
          const int32_t* column = row_arg.data() + ih * g.out_w;
          float* o = out + oh * g.out_w;
          int32_t* a = arg + oh * g.out_w;
          for (int64_t ow = 0; ow < g.out_w; ++ow) {
            const bool better = a[ow] < 0 || best[ow] > o[ow];
            o[ow] = better ? best[ow] : o[ow];
            a[ow] = better ? static_cast<int32_t>(ih * g.in_w) + column[ow] : a[ow];
          }
        }
      }
    }
  });
}

inline void max_pool2d_backward(const Pool2dGeometry& g, const float* dy, const int32_t* argmax, float* dx) {
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
