// Drawing on images (viz/: above data/ and io/, whose images it draws on), for annotated detections
// and plots: lines, rectangles, filled rectangles and
// text (stb_easy_font's built-in font, scaled by an integer factor).
#pragma once
#include <cmath>
#include <stb/stb_easy_font.h>

#include "pdyolo/data/image.hpp"

namespace pdyolo::viz {

using data::Image;

struct Color {
  uint8_t r = 0, g = 0, b = 0;
};

inline void put_pixel(Image& img, int64_t x, int64_t y, Color c) {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  uint8_t* p = img.at(x, y);
  p[0] = c.r;
  p[1] = c.g;
  p[2] = c.b;
}

inline void fill_rect(Image& img, int64_t x1, int64_t y1, int64_t x2, int64_t y2, Color c) {
  for (int64_t y = std::max<int64_t>(0, y1); y < std::min(img.height, y2); ++y)
    for (int64_t x = std::max<int64_t>(0, x1); x < std::min(img.width, x2); ++x) put_pixel(img, x, y, c);
}

// A line `thickness` pixels wide (square brush).
inline void draw_line(Image& img, double x0, double y0, double x1, double y1, Color c, int thickness = 1) {
  const double steps = std::max({std::fabs(x1 - x0), std::fabs(y1 - y0), 1.0});
  for (int64_t i = 0; i <= static_cast<int64_t>(steps); ++i) {
    const double t = i / steps;
    const int64_t x = static_cast<int64_t>(std::lround(x0 + (x1 - x0) * t)), y = static_cast<int64_t>(std::lround(y0 + (y1 - y0) * t));
    fill_rect(img, x - thickness / 2, y - thickness / 2, x - thickness / 2 + thickness, y - thickness / 2 + thickness, c);
  }
}

inline void draw_rect(Image& img, double x1, double y1, double x2, double y2, Color c, int thickness = 2) {
  draw_line(img, x1, y1, x2, y1, c, thickness);
  draw_line(img, x2, y1, x2, y2, c, thickness);
  draw_line(img, x2, y2, x1, y2, c, thickness);
  draw_line(img, x1, y2, x1, y1, c, thickness);
}

// Text with its top-left corner at (x, y); returns its width in pixels.
inline int64_t draw_text(Image& img, int64_t x, int64_t y, const std::string& text, Color c, int scale = 1) {
  static thread_local std::vector<char> buffer(1 << 16);
  std::string copy = text;  // stb_easy_font takes a non-const char*
  const int quads = stb_easy_font_print(0, 0, copy.data(), nullptr, buffer.data(), static_cast<int>(buffer.size()));
  const float* v = reinterpret_cast<const float*>(buffer.data());
  for (int q = 0; q < quads; ++q) {  // 4 vertices of (x, y, z, colour) = 16 bytes each
    const float* quad = v + q * 16;
    fill_rect(img, x + static_cast<int64_t>(quad[0] * scale), y + static_cast<int64_t>(quad[1] * scale),
              x + static_cast<int64_t>(quad[8] * scale), y + static_cast<int64_t>(quad[9] * scale), c);
  }
  return stb_easy_font_width(copy.data()) * scale;
}

inline int64_t text_height(int scale = 1) { return 12 * scale; }

inline int64_t text_width(const std::string& text, int scale = 1) {
  std::string copy = text;  // stb_easy_font takes a non-const char*
  return stb_easy_font_width(copy.data()) * scale;
}

// A distinct colour per class (the golden-angle hue walk).
inline Color class_color(int64_t cls) {
  const double h = std::fmod(cls * 0.618033988749895, 1.0) * 6.0;
  const double x = 1.0 - std::fabs(std::fmod(h, 2.0) - 1.0);
  double r = 0, g = 0, b = 0;
  switch (static_cast<int>(h)) {
    case 0: r = 1, g = x; break;
    case 1: r = x, g = 1; break;
    case 2: g = 1, b = x; break;
    case 3: g = x, b = 1; break;
    case 4: r = x, b = 1; break;
    default: r = 1, b = x;
  }
  return {static_cast<uint8_t>(40 + 200 * r), static_cast<uint8_t>(40 + 200 * g), static_cast<uint8_t>(40 + 200 * b)};
}

}  // namespace pdyolo::viz
