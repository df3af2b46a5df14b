// 8-bit RGB images: decoding (stb_image, from Debian's libstb), resizing exactly as OpenCV's
// cv2.resize does it for uint8 (INTER_LINEAR in 11-bit fixed point, INTER_AREA with fractional
// cell weights) — because the reference pipeline is OpenCV and the boxes, mAP and outputs must
// match it — the reference's letterbox, and conversion to model input tensors.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "pdyolo/core/tensor.hpp"

namespace pdyolo::data {

// The largest image pdyolo decodes or accepts from an annotation: 16384 pixels a side and 2^27
// pixels in all (a 400 MB RGB buffer).
constexpr int64_t kMaxImageSide = 16384, kMaxImagePixels = int64_t{1} << 27;

struct Image {
  int64_t width = 0, height = 0;
  std::vector<uint8_t> pixels;  // height × width × 3, RGB, row-major

  Image() = default;
  Image(int64_t w, int64_t h, uint8_t fill = 0) : width(w), height(h), pixels(static_cast<size_t>(w * h * 3), fill) {}
  uint8_t* row(int64_t y) { return pixels.data() + y * width * 3; }
  const uint8_t* row(int64_t y) const { return pixels.data() + y * width * 3; }
  uint8_t* at(int64_t x, int64_t y) { return row(y) + x * 3; }
  const uint8_t* at(int64_t x, int64_t y) const { return row(y) + x * 3; }
  bool empty() const { return pixels.empty(); }
};

Image load_image(const std::string& path);                    // data/image_io.hpp (needs stb)
void save_image(const std::string& path, const Image& image);  // .png or .jpg, written atomically

namespace detail {

constexpr int kResizeCoefBits = 11;
constexpr int kResizeCoefScale = 1 << kResizeCoefBits;  // 2048

// For each destination index: the source index and the two fixed-point weights, as OpenCV builds
// them for INTER_LINEAR (half-pixel centres, edges clamped).
struct LinearTaps {
  std::vector<int64_t> index;
  std::vector<int16_t> w0, w1;
};
inline LinearTaps linear_taps(int64_t src, int64_t dst) {
  LinearTaps t;
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  for (int64_t d = 0; d < dst; ++d) {
    float f = static_cast<float>((d + 0.5) * scale - 0.5);
    int64_t s = static_cast<int64_t>(std::floor(f));
    f -= static_cast<float>(s);
    if (s < 0) f = 0, s = 0;
    if (s >= src - 1) f = 0, s = src - 1;
    t.index.push_back(s);
    t.w0.push_back(static_cast<int16_t>(std::lrint((1.0f - f) * kResizeCoefScale)));
    t.w1.push_back(static_cast<int16_t>(std::lrint(f * kResizeCoefScale)));
  }
  return t;
}

// OpenCV's INTER_AREA weights along one axis: the source cells each destination cell covers.
struct AreaTap {
  int64_t dst, src;
  float weight;
};
inline std::vector<AreaTap> area_taps(int64_t src, int64_t dst) {
  std::vector<AreaTap> taps;
  const double scale = static_cast<double>(src) / static_cast<double>(dst);
  for (int64_t d = 0; d < dst; ++d) {
    const double f1 = d * scale, f2 = f1 + scale;
    const double cell = std::min(scale, static_cast<double>(src) - f1);
    int64_t s1 = static_cast<int64_t>(std::ceil(f1)), s2 = static_cast<int64_t>(std::floor(f2));
    s2 = std::min(s2, src - 1);
    s1 = std::min(s1, s2);
    if (s1 - f1 > 1e-3) taps.push_back({d, s1 - 1, static_cast<float>((s1 - f1) / cell)});
    for (int64_t s = s1; s < s2; ++s) taps.push_back({d, s, static_cast<float>(1.0 / cell)});
    if (f2 - s2 > 1e-3) taps.push_back({d, s2, static_cast<float>(std::min(std::min(f2 - s2, 1.0), cell) / cell)});
  }
  return taps;
}

}  // namespace detail

// cv2.resize(..., INTER_LINEAR) for uint8: a horizontal pass into integers scaled by 2048, then a
// vertical pass with the rounding of OpenCV's vectorised path.
inline Image resize_linear(const Image& src, int64_t width, int64_t height) {
  PDYOLO_CHECK(width > 0 && height > 0 && !src.empty(), "resize_linear: empty image or size");
  const detail::LinearTaps xs = detail::linear_taps(src.width, width), ys = detail::linear_taps(src.height, height);
  std::vector<int32_t> rows(static_cast<size_t>(src.height * width * 3));
  parallel_for(0, src.height, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t y = lo; y < hi; ++y) {
      const uint8_t* s = src.row(y);
      int32_t* d = rows.data() + y * width * 3;
      for (int64_t x = 0; x < width; ++x) {
        const int64_t sx = xs.index[x], sx1 = std::min(sx + 1, src.width - 1);
        for (int c = 0; c < 3; ++c) d[x * 3 + c] = s[sx * 3 + c] * xs.w0[x] + s[sx1 * 3 + c] * xs.w1[x];
      }
    }
  });
  Image out(width, height);
  parallel_for(0, height, 16, [&](int64_t lo, int64_t hi) {
    for (int64_t y = lo; y < hi; ++y) {
      const int64_t sy = ys.index[y], sy1 = std::min(sy + 1, src.height - 1);
      const int32_t* r0 = rows.data() + sy * width * 3;
      const int32_t* r1 = rows.data() + sy1 * width * 3;
      const int32_t b0 = ys.w0[y], b1 = ys.w1[y];
      uint8_t* d = out.row(y);
      for (int64_t i = 0; i < width * 3; ++i) {
        const int32_t v = (((r0[i] >> 4) * b0) >> 16) + (((r1[i] >> 4) * b1) >> 16);
        d[i] = static_cast<uint8_t>(std::clamp((v + 2) >> 2, 0, 255));
      }
    }
  });
  return out;
}

// cv2.resize(..., INTER_AREA) for uint8 when shrinking: each output pixel is the area-weighted mean
// of the source pixels its cell covers (the exact 2× case averages 2×2 blocks in integers).
inline Image resize_area(const Image& src, int64_t width, int64_t height) {
  PDYOLO_CHECK(width > 0 && height > 0 && !src.empty(), "resize_area: empty image or size");
  Image out(width, height);
  if (src.width == 2 * width && src.height == 2 * height) {
    parallel_for(0, height, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t y = lo; y < hi; ++y)
        for (int64_t x = 0; x < width; ++x)
          for (int c = 0; c < 3; ++c) {
            const int sum = src.at(2 * x, 2 * y)[c] + src.at(2 * x + 1, 2 * y)[c] + src.at(2 * x, 2 * y + 1)[c] +
                            src.at(2 * x + 1, 2 * y + 1)[c];
            out.at(x, y)[c] = static_cast<uint8_t>((sum + 2) >> 2);
          }
    });
    return out;
  }
  const std::vector<detail::AreaTap> xt = detail::area_taps(src.width, width), yt = detail::area_taps(src.height, height);
  // Group the vertical taps by destination row.
  std::vector<size_t> row_start(static_cast<size_t>(height + 1), yt.size());
  for (size_t j = yt.size(); j-- > 0;) row_start[yt[j].dst] = j;
  for (int64_t y = height - 1; y >= 0; --y) row_start[y] = std::min(row_start[y], row_start[y + 1]);
  parallel_for(0, height, 4, [&](int64_t lo, int64_t hi) {
    std::vector<float> buf(static_cast<size_t>(width * 3)), sum(static_cast<size_t>(width * 3));
    for (int64_t y = lo; y < hi; ++y) {
      std::fill(sum.begin(), sum.end(), 0.0f);
      for (size_t j = row_start[y]; j < row_start[y + 1]; ++j) {
        std::fill(buf.begin(), buf.end(), 0.0f);
        const uint8_t* s = src.row(yt[j].src);
        for (const detail::AreaTap& t : xt)
          for (int c = 0; c < 3; ++c) buf[t.dst * 3 + c] += s[t.src * 3 + c] * t.weight;
        for (size_t i = 0; i < sum.size(); ++i) sum[i] += yt[j].weight * buf[i];
      }
      uint8_t* d = out.row(y);
      for (size_t i = 0; i < sum.size(); ++i) d[i] = static_cast<uint8_t>(std::clamp(std::lrint(sum[i]), 0L, 255L));
    }
  });
  return out;
}

// Where a letterboxed image sits inside its canvas: original pixel = (canvas pixel − pad) / gain.
struct LetterboxInfo {
  double gain_x = 1.0, gain_y = 1.0;  // resized / original size
  double pad_x = 0.0, pad_y = 0.0;    // the (dw, dh) the reference returns (half the total padding)
};

struct Letterboxed {
  Image image;
  LetterboxInfo info;
};

// The reference's letterbox(): scale to fit (never up when scaleup is false), INTER_LINEAR resize
// to round(w·r) × round(h·r), then grey (114) borders — on all sides to the full size, or with
// `auto_pad` only to the next multiple of `stride`. Python's round (half to even) throughout.
inline Letterboxed letterbox(const Image& img, int64_t target_h, int64_t target_w, bool auto_pad = false,
                             bool scaleup = true, int64_t stride = 32) {
  double r = std::min(static_cast<double>(target_h) / img.height, static_cast<double>(target_w) / img.width);
  if (!scaleup) r = std::min(r, 1.0);
  const int64_t new_w = static_cast<int64_t>(std::nearbyint(img.width * r));
  const int64_t new_h = static_cast<int64_t>(std::nearbyint(img.height * r));
  double dw = static_cast<double>(target_w - new_w), dh = static_cast<double>(target_h - new_h);
  if (auto_pad) {
    dw = std::fmod(dw, static_cast<double>(stride));
    dh = std::fmod(dh, static_cast<double>(stride));
  }
  dw /= 2;
  dh /= 2;
  const Image resized = (new_w == img.width && new_h == img.height) ? img : resize_linear(img, new_w, new_h);
  const int64_t top = static_cast<int64_t>(std::nearbyint(dh - 0.1)), bottom = static_cast<int64_t>(std::nearbyint(dh + 0.1));
  const int64_t left = static_cast<int64_t>(std::nearbyint(dw - 0.1)), right = static_cast<int64_t>(std::nearbyint(dw + 0.1));
  Letterboxed out{Image(new_w + left + right, new_h + top + bottom, 114), {r, r, dw, dh}};
  for (int64_t y = 0; y < new_h; ++y) std::copy(resized.row(y), resized.row(y) + new_w * 3, out.image.at(left, y + top));
  return out;
}

// The reference dataset's load_image(): resize so the long side is `size`, truncating the other side
// like int(); INTER_AREA when shrinking without augmentation, else INTER_LINEAR.
inline Image resize_long_side(const Image& img, int64_t size, bool augment) {
  const double r = static_cast<double>(size) / static_cast<double>(std::max(img.width, img.height));
  if (r == 1.0) return img;
  const int64_t w = static_cast<int64_t>(img.width * r), h = static_cast<int64_t>(img.height * r);
  return (r < 1.0 && !augment) ? resize_area(img, w, h) : resize_linear(img, w, h);
}

// HWC uint8 RGB → [3, H, W] float in [0, 1], written into `out` (one image of a batch).
inline void image_to_chw(const Image& img, float* out) {
  const int64_t plane = img.width * img.height;
  for (int64_t i = 0; i < plane; ++i)
    for (int c = 0; c < 3; ++c) out[c * plane + i] = img.pixels[static_cast<size_t>(i * 3 + c)] * (1.0f / 255.0f);
}

inline Tensor images_to_tensor(const std::vector<Image>& images) {
  PDYOLO_CHECK(!images.empty(), "images_to_tensor: no images");
  const int64_t w = images[0].width, h = images[0].height;
  Tensor t = Tensor::empty({static_cast<int64_t>(images.size()), 3, h, w});
  for (size_t i = 0; i < images.size(); ++i) {
    PDYOLO_CHECK(images[i].width == w && images[i].height == h, "images_to_tensor: images differ in size");
    image_to_chw(images[i], t.data<float>() + static_cast<int64_t>(i) * 3 * h * w);
  }
  return t;
}

}  // namespace pdyolo::data
