// The augmentations of the reference training recipe (hyp.scratch.*): HSV jitter, flips, random
// perspective / affine warps, 4-image mosaic and mixup, with boxes transformed, clipped and
// filtered as the reference does. Every random choice comes from the Generator passed in, so a
// sample is reproducible from its seed.
#pragma once
#include <array>
#include <cmath>

#include "pdyolo/data/dataset.hpp"
#include "pdyolo/data/image.hpp"
#include "pdyolo/io/value.hpp"

namespace pdyolo::data {

// The augmentation part of a hyperparameter file.
struct AugmentOptions {
  float hsv_h = 0.015f, hsv_s = 0.7f, hsv_v = 0.4f;
  float degrees = 0.0f, translate = 0.1f, scale = 0.5f, shear = 0.0f, perspective = 0.0f;
  float flipud = 0.0f, fliplr = 0.5f;
  float mosaic = 1.0f, mixup = 0.0f;

  static AugmentOptions none() {
    AugmentOptions o;
    o.hsv_h = o.hsv_s = o.hsv_v = o.translate = o.scale = o.fliplr = o.mosaic = 0.0f;
    return o;
  }
  // Reads the keys a hyp YAML has (others keep their defaults).
  static AugmentOptions from_hyp(const io::Value& hyp) {
    AugmentOptions o;
    auto read = [&](const char* key, float& field) {
      if (const io::Value* v = hyp.find(key); v && v->is_number()) field = static_cast<float>(v->as_double());
    };
    read("hsv_h", o.hsv_h), read("hsv_s", o.hsv_s), read("hsv_v", o.hsv_v), read("degrees", o.degrees);
    read("translate", o.translate), read("scale", o.scale), read("shear", o.shear), read("perspective", o.perspective);
    read("flipud", o.flipud), read("fliplr", o.fliplr), read("mosaic", o.mosaic), read("mixup", o.mixup);
    return o;
  }
};

// Boxes as pixel edges in the current image, with their classes.
using Labels = std::vector<Box>;

// ---- colour ---------------------------------------------------------------------------------------

// OpenCV's 8-bit RGB→HSV (H in [0, 180), S and V in [0, 255]) with its fixed-point tables.
inline void rgb_to_hsv(const uint8_t* rgb, uint8_t* hsv) {
  const int r = rgb[0], g = rgb[1], b = rgb[2];
  const int v = std::max({r, g, b}), vmin = std::min({r, g, b}), diff = v - vmin;
  constexpr int shift = 12;
  const int s = v == 0 ? 0 : (diff * static_cast<int>(std::lround((255 << shift) / static_cast<double>(v))) + (1 << (shift - 1))) >> shift;
  int h = 0;
  if (diff != 0) {
    h = v == r ? g - b : (v == g ? b - r + 2 * diff : r - g + 4 * diff);
    h = (h * static_cast<int>(std::lround((180 << shift) / (6.0 * diff))) + (1 << (shift - 1))) >> shift;
    if (h < 0) h += 180;
  }
  hsv[0] = static_cast<uint8_t>(h);
  hsv[1] = static_cast<uint8_t>(s);
  hsv[2] = static_cast<uint8_t>(v);
}

inline void hsv_to_rgb(const uint8_t* hsv, uint8_t* rgb) {
  const float h = hsv[0] * (6.0f / 180.0f), s = hsv[1] / 255.0f, v = hsv[2] / 255.0f;
  int sector = static_cast<int>(std::floor(h));
  const float f = h - static_cast<float>(sector);
  sector %= 6;
  const float p = v * (1 - s), q = v * (1 - s * f), t = v * (1 - s * (1 - f));
  const float table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  for (int c = 0; c < 3; ++c) rgb[c] = static_cast<uint8_t>(std::clamp(std::lround(table[sector][c] * 255.0f), 0L, 255L));
}

// The reference's augment_hsv: random gains for hue (mod 180), saturation and value via lookup tables.
inline void augment_hsv(Image& img, float hgain, float sgain, float vgain, Generator& gen) {
  const float r[3] = {gen.uniform(-1, 1) * hgain + 1, gen.uniform(-1, 1) * sgain + 1, gen.uniform(-1, 1) * vgain + 1};
  if (hgain == 0 && sgain == 0 && vgain == 0) return;
  uint8_t lut_h[256], lut_s[256], lut_v[256];
  for (int x = 0; x < 256; ++x) {
    lut_h[x] = static_cast<uint8_t>(static_cast<int>(x * r[0]) % 180);
    lut_s[x] = static_cast<uint8_t>(std::clamp(static_cast<int>(x * r[1]), 0, 255));
    lut_v[x] = static_cast<uint8_t>(std::clamp(static_cast<int>(x * r[2]), 0, 255));
  }
  for (size_t i = 0; i < img.pixels.size(); i += 3) {
    uint8_t hsv[3];
    rgb_to_hsv(&img.pixels[i], hsv);
    hsv[0] = lut_h[hsv[0]];
    hsv[1] = lut_s[hsv[1]];
    hsv[2] = lut_v[hsv[2]];
    hsv_to_rgb(hsv, &img.pixels[i]);
  }
}

// ---- flips --------------------------------------------------------------------------------------------

inline void flip_horizontal(Image& img, Labels& labels) {
  for (int64_t y = 0; y < img.height; ++y)
    for (int64_t x = 0; x < img.width / 2; ++x)
      std::swap_ranges(img.at(x, y), img.at(x, y) + 3, img.at(img.width - 1 - x, y));
  for (Box& b : labels) {
    const float x1 = static_cast<float>(img.width) - b.x2;
    b.x2 = static_cast<float>(img.width) - b.x1;
    b.x1 = x1;
  }
}

inline void flip_vertical(Image& img, Labels& labels) {
  for (int64_t y = 0; y < img.height / 2; ++y) std::swap_ranges(img.row(y), img.row(y) + img.width * 3, img.row(img.height - 1 - y));
  for (Box& b : labels) {
    const float y1 = static_cast<float>(img.height) - b.y2;
    b.y2 = static_cast<float>(img.height) - b.y1;
    b.y1 = y1;
  }
}

// ---- geometric warps ---------------------------------------------------------------------------------

using Matrix3 = std::array<double, 9>;  // row-major 3×3

inline Matrix3 matmul3(const Matrix3& a, const Matrix3& b) {
  Matrix3 c{};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 3; ++k) c[i * 3 + j] += a[i * 3 + k] * b[k * 3 + j];
  return c;
}

inline Matrix3 invert3(const Matrix3& m) {
  const double det = m[0] * (m[4] * m[8] - m[5] * m[7]) - m[1] * (m[3] * m[8] - m[5] * m[6]) + m[2] * (m[3] * m[7] - m[4] * m[6]);
  PDYOLO_CHECK(std::fabs(det) > 1e-12, "warp: singular transform");
  const double d = 1.0 / det;
  return {(m[4] * m[8] - m[5] * m[7]) * d, (m[2] * m[7] - m[1] * m[8]) * d, (m[1] * m[5] - m[2] * m[4]) * d,
          (m[5] * m[6] - m[3] * m[8]) * d, (m[0] * m[8] - m[2] * m[6]) * d, (m[2] * m[3] - m[0] * m[5]) * d,
          (m[3] * m[7] - m[4] * m[6]) * d, (m[1] * m[6] - m[0] * m[7]) * d, (m[0] * m[4] - m[1] * m[3]) * d};
}

// dst(x, y) = src(M⁻¹·(x, y)) with bilinear sampling and grey (114) outside, like cv2.warpPerspective.
inline Image warp(const Image& src, const Matrix3& m, int64_t width, int64_t height) {
  const Matrix3 inv = invert3(m);
  Image out(width, height, 114);
  parallel_for(0, height, 8, [&](int64_t lo, int64_t hi) {
    for (int64_t y = lo; y < hi; ++y)
      for (int64_t x = 0; x < width; ++x) {
        const double w = inv[6] * x + inv[7] * y + inv[8];
        const double sx = (inv[0] * x + inv[1] * y + inv[2]) / w, sy = (inv[3] * x + inv[4] * y + inv[5]) / w;
        const int64_t x0 = static_cast<int64_t>(std::floor(sx)), y0 = static_cast<int64_t>(std::floor(sy));
        if (x0 < -1 || y0 < -1 || x0 >= src.width || y0 >= src.height) continue;
        const float fx = static_cast<float>(sx - x0), fy = static_cast<float>(sy - y0);
        uint8_t* d = out.at(x, y);
        for (int c = 0; c < 3; ++c) {
          auto px = [&](int64_t xx, int64_t yy) -> float {
            return (xx < 0 || yy < 0 || xx >= src.width || yy >= src.height) ? 114.0f : src.at(xx, yy)[c];
          };
          const float v = (px(x0, y0) * (1 - fx) + px(x0 + 1, y0) * fx) * (1 - fy) + (px(x0, y0 + 1) * (1 - fx) + px(x0 + 1, y0 + 1) * fx) * fy;
          d[c] = static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
        }
      }
  });
  return out;
}

// The reference's box_candidates: big enough (> 2 px), kept > 10 % of the area it would have had
// from scaling alone, aspect ratio < 20.
inline bool box_candidate(const Box& before, const Box& after, float area_scale) {
  const float w1 = (before.x2 - before.x1) * area_scale, h1 = (before.y2 - before.y1) * area_scale;
  const float w2 = after.x2 - after.x1, h2 = after.y2 - after.y1;
  const float ar = std::max(w2 / (h2 + 1e-16f), h2 / (w2 + 1e-16f));
  return w2 > 2 && h2 > 2 && w2 * h2 / (w1 * h1 + 1e-16f) > 0.1f && ar < 20;
}

// The reference's random_perspective: M = T·S·R·P·C (centre, perspective, rotation+scale, shear,
// translation); the output is (image + 2·border) sized; boxes become the bounds of their warped
// corners, clipped, and filtered with box_candidates.
inline Image random_perspective(const Image& img, Labels& labels, const AugmentOptions& o, Generator& gen, int64_t border = 0) {
  const int64_t height = img.height + border * 2, width = img.width + border * 2;
  const Matrix3 C{1, 0, -img.width / 2.0, 0, 1, -img.height / 2.0, 0, 0, 1};
  Matrix3 P{1, 0, 0, 0, 1, 0, 0, 0, 1};
  P[6] = gen.uniform(-o.perspective, o.perspective);
  P[7] = gen.uniform(-o.perspective, o.perspective);
  const double angle = gen.uniform(-o.degrees, o.degrees) * M_PI / 180.0;
  const double s = gen.uniform(1 - o.scale, 1.1f + o.scale);
  const Matrix3 R{s * std::cos(angle), s * std::sin(angle), 0, -s * std::sin(angle), s * std::cos(angle), 0, 0, 0, 1};
  const Matrix3 S{1, std::tan(gen.uniform(-o.shear, o.shear) * M_PI / 180.0), 0,
                  std::tan(gen.uniform(-o.shear, o.shear) * M_PI / 180.0), 1, 0, 0, 0, 1};
  const Matrix3 T{1, 0, gen.uniform(0.5f - o.translate, 0.5f + o.translate) * width, 0, 1,
                  gen.uniform(0.5f - o.translate, 0.5f + o.translate) * height, 0, 0, 1};
  const Matrix3 M = matmul3(T, matmul3(S, matmul3(R, matmul3(P, C))));
  const Image out = warp(img, M, width, height);
  Labels kept;
  for (const Box& b : labels) {
    const double corners[4][2] = {{b.x1, b.y1}, {b.x2, b.y2}, {b.x1, b.y2}, {b.x2, b.y1}};
    double x_min = 1e30, y_min = 1e30, x_max = -1e30, y_max = -1e30;
    for (const auto& c : corners) {
      const double w = o.perspective != 0 ? M[6] * c[0] + M[7] * c[1] + M[8] : 1.0;
      const double x = (M[0] * c[0] + M[1] * c[1] + M[2]) / w, y = (M[3] * c[0] + M[4] * c[1] + M[5]) / w;
      x_min = std::min(x_min, x), x_max = std::max(x_max, x), y_min = std::min(y_min, y), y_max = std::max(y_max, y);
    }
    Box n = b;
    n.x1 = static_cast<float>(std::clamp(x_min, 0.0, static_cast<double>(width)));
    n.x2 = static_cast<float>(std::clamp(x_max, 0.0, static_cast<double>(width)));
    n.y1 = static_cast<float>(std::clamp(y_min, 0.0, static_cast<double>(height)));
    n.y2 = static_cast<float>(std::clamp(y_max, 0.0, static_cast<double>(height)));
    if (box_candidate(b, n, static_cast<float>(s))) kept.push_back(n);
  }
  labels = std::move(kept);
  return out;
}

// ---- mosaic and mixup --------------------------------------------------------------------------------

// Four images (already resized so the long side is `size`) around a random centre on a 2s × 2s
// grey canvas, then the random perspective with border −s/2 that crops it back to s × s.
inline Image mosaic4(const std::array<const Image*, 4>& images, const std::array<Labels, 4>& labels, int64_t size,
                     Labels& out_labels, const AugmentOptions& o, Generator& gen) {
  const int64_t s = size, border = -s / 2;
  const int64_t yc = static_cast<int64_t>(gen.uniform(static_cast<float>(-border), static_cast<float>(2 * s + border)));
  const int64_t xc = static_cast<int64_t>(gen.uniform(static_cast<float>(-border), static_cast<float>(2 * s + border)));
  Image canvas(2 * s, 2 * s, 114);
  out_labels.clear();
  for (int i = 0; i < 4; ++i) {
    const Image& img = *images[i];
    const int64_t w = img.width, h = img.height;
    int64_t x1a, y1a, x2a, y2a, x1b, y1b, x2b;  // destination and source corners (rows copied: y2a − y1a)
    if (i == 0) {
      x1a = std::max<int64_t>(xc - w, 0), y1a = std::max<int64_t>(yc - h, 0), x2a = xc, y2a = yc;
      x1b = w - (x2a - x1a), y1b = h - (y2a - y1a), x2b = w;
    } else if (i == 1) {
      x1a = xc, y1a = std::max<int64_t>(yc - h, 0), x2a = std::min(xc + w, 2 * s), y2a = yc;
      x1b = 0, y1b = h - (y2a - y1a), x2b = std::min(w, x2a - x1a);
    } else if (i == 2) {
      x1a = std::max<int64_t>(xc - w, 0), y1a = yc, x2a = xc, y2a = std::min(2 * s, yc + h);
      x1b = w - (x2a - x1a), y1b = 0, x2b = w;
    } else {
      x1a = xc, y1a = yc, x2a = std::min(xc + w, 2 * s), y2a = std::min(2 * s, yc + h);
      x1b = 0, y1b = 0, x2b = std::min(w, x2a - x1a);
    }
    for (int64_t y = 0; y < y2a - y1a; ++y)
      std::copy(img.at(x1b, y1b + y), img.at(x1b, y1b + y) + (x2b - x1b) * 3, canvas.at(x1a, y1a + y));
    const float padw = static_cast<float>(x1a - x1b), padh = static_cast<float>(y1a - y1b);
    for (Box b : labels[i]) {
      b.x1 = std::clamp(b.x1 + padw, 0.0f, 2.0f * s), b.x2 = std::clamp(b.x2 + padw, 0.0f, 2.0f * s);
      b.y1 = std::clamp(b.y1 + padh, 0.0f, 2.0f * s), b.y2 = std::clamp(b.y2 + padh, 0.0f, 2.0f * s);
      out_labels.push_back(b);
    }
  }
  return random_perspective(canvas, out_labels, o, gen, border);
}

// Blends two images with a Beta(8, 8) ratio (the reference's mixup) and keeps both sets of boxes.
inline void mixup(Image& img, Labels& labels, const Image& other, const Labels& other_labels, Generator& gen) {
  PDYOLO_CHECK(img.width == other.width && img.height == other.height, "mixup: images differ in size");
  // Beta(8, 8) as X / (X + Y) with X, Y ~ Gamma(8): a Gamma(k) with integer k is a sum of k exponentials.
  auto gamma8 = [&] {
    double sum = 0;
    for (int i = 0; i < 8; ++i) sum -= std::log(1.0 - gen.uniform());
    return sum;
  };
  const double x = gamma8(), y = gamma8(), r = x / (x + y);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = static_cast<uint8_t>(img.pixels[i] * r + other.pixels[i] * (1 - r));  // truncation, like astype(uint8)
  labels.insert(labels.end(), other_labels.begin(), other_labels.end());
}

}  // namespace pdyolo::data
