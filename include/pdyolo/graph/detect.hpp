// The YOLO detection head's outputs (the detect node): raw maps and decoded boxes, as the
// reference Detect / IDetect give them. Both executors (graph/executor.hpp) use these.
//   raw      each level's head conv output [N, na·no, H, W] as [N, na, H, W, no], pre-sigmoid
//   decoded  s = σ(t);  x, y = (2·s_xy − 0.5 + cell) · stride;  w, h = (2·s_wh)² · anchor;
//            objectness and class scores = s   (box centre and size in input pixels)
#pragma once
#include <cstdint>
#include <utility>
#include <vector>

#include "pdyolo/backend/dispatch.hpp"
#include "pdyolo/graph/graph.hpp"

namespace pdyolo::graph {

// box [no]: σ of a cell's raw outputs → x, y (cell (col, row), in pixels), w, h (anchor [2], in pixels).
inline void decode_box(float* box, int64_t col, int64_t row, float stride, const float* anchor) {
  box[0] = (box[0] * 2.0f - 0.5f + static_cast<float>(col)) * stride;
  box[1] = (box[1] * 2.0f - 0.5f + static_cast<float>(row)) * stride;
  const float bw = box[2] * 2.0f, bh = box[3] * 2.0f;
  box[2] = bw * bw * anchor[0];
  box[3] = bh * bh * anchor[1];
}

// map [na·no, h, w] (one image's head conv output) → out [na·h·w, no] rows ordered (anchor, row, column).
// anchors [na, 2]: width and height in pixels.
inline void decode_yolo_level(const float* map, int64_t na, int64_t no, int64_t h, int64_t w, float stride,
                              const float* anchors, float* out) {
  const int64_t plane = h * w;
  parallel_for(0, na * h, 8, [&](int64_t lo, int64_t hi) {
    thread_local std::vector<float> scores;  // σ of one row [no, w], computed along contiguous rows; reused
    scores.resize(static_cast<size_t>(no * w));
    for (int64_t ar = lo; ar < hi; ++ar) {
      const int64_t a = ar / h, row = ar % h;
      const float* in = map + a * no * plane + row * w;  // channel k of this row: in[k · plane + column]
      for (int64_t k = 0; k < no; ++k) CpuKernels::sigmoid_row(in + k * plane, scores.data() + k * w, w);
      for (int64_t col = 0; col < w; ++col) {
        float* box = out + ((a * h + row) * w + col) * no;
        for (int64_t k = 0; k < no; ++k) box[k] = scores[k * w + col];
        decode_box(box, col, row, stride, anchors + a * 2);
      }
    }
  });
}

// Reshapes each level's map [N, na·no, H, W] to [N, na, H, W, no] (autograd: gradients flow).
inline std::vector<Tensor> detect_raw_maps(const DetectAttrs& d, const std::vector<Tensor>& levels) {
  std::vector<Tensor> raw;
  const int64_t no = d.outputs_per_anchor();
  for (size_t level = 0; level < levels.size(); ++level) {
    const Tensor& x = levels[level];
    const int64_t n = x.shape()[0], h = x.shape()[2], w = x.shape()[3];
    PDYOLO_CHECK(x.shape()[1] == d.na * no, "detect: level ", level, " has ", x.shape()[1], " channels, expected ", d.na * no);
    raw.push_back(x.reshape({n, d.na, no, h, w}).permute({0, 1, 3, 4, 2}).contiguous());
  }
  return raw;
}

// Decodes the levels' maps [N, na·no, H, W] (contiguous f32 per image) into out [N, rows, no]:
// image i of level l at image(l, i). The boxes are x, y, w, h in input pixels, then sigmoid scores.
template <class ImageOf>
void decode_detections(const Node& detect, const Tensor& anchor_grid, const std::vector<std::pair<int64_t, int64_t>>& sizes, int64_t n,
                   const ImageOf& image, float* out) {
  const auto& d = detect.get<DetectAttrs>();
  const int64_t no = d.outputs_per_anchor();
  int64_t rows = 0;
  for (const auto& [h, w] : sizes) rows += d.na * h * w;
  int64_t first_row = 0;
  for (size_t level = 0; level < sizes.size(); ++level) {
    const auto [h, w] = sizes[level];
    for (int64_t i = 0; i < n; ++i)
      decode_yolo_level(image(level, i), d.na, no, h, w, d.strides[level],
                                 anchor_grid.data<float>() + static_cast<int64_t>(level) * d.na * 2, out + (i * rows + first_row) * no);
    first_row += d.na * h * w;
  }
}

}  // namespace pdyolo::graph
