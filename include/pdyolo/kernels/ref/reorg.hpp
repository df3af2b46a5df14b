// Reference reorg (YOLOv7-P6's space-to-depth) over images [N, C, H, W], H and W even:
//   y[n, k·C + c, i, j] = x[n, c, 2i + dy_k, 2j + dx_k],  (dy, dx)_k = (0,0), (1,0), (0,1), (1,1)
// — the reference's order: the even rows and columns, then the odd rows, then the odd columns, then
// both odd. (ONNX's SpaceToDepth orders the phases (0,0), (0,1), (1,0), (1,1) and interleaves
// them per channel; this is not it.)
#pragma once
#include <cstdint>

namespace pdyolo::kernels {

// The row and column offset of phase k (0…3) in the reference's order.
inline constexpr int64_t kReorgRow[4] = {0, 1, 0, 1};
inline constexpr int64_t kReorgColumn[4] = {0, 0, 1, 1};

namespace ref {

// fn(output index, input index) for every element, in output order.
template <class Fn>
void for_each_reorg_element(int64_t n, int64_t c, int64_t h, int64_t w, const Fn& fn) {
  const int64_t oh = h / 2, ow = w / 2;
  for (int64_t b = 0; b < n; ++b)
    for (int64_t k = 0; k < 4; ++k)
      for (int64_t ch = 0; ch < c; ++ch)
        for (int64_t i = 0; i < oh; ++i)
          for (int64_t j = 0; j < ow; ++j)
            fn((((b * 4 + k) * c + ch) * oh + i) * ow + j, ((b * c + ch) * h + 2 * i + kReorgRow[k]) * w + 2 * j + kReorgColumn[k]);
}

inline void reorg_forward(int64_t n, int64_t c, int64_t h, int64_t w, const float* x, float* y) {
  for_each_reorg_element(n, c, h, w, [&](int64_t out, int64_t in) { y[out] = x[in]; });
}

// The gradient: each input element receives the one output element it was copied to.
inline void reorg_backward(int64_t n, int64_t c, int64_t h, int64_t w, const float* dy, float* dx) {
  for_each_reorg_element(n, c, h, w, [&](int64_t out, int64_t in) { dx[in] = dy[out]; });
}

}  // namespace ref
}  // namespace pdyolo::kernels
