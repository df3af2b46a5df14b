// Image files through stb_image / stb_image_write (Debian's libstb: link the pdyolo::image target).
// Decoding errors name the file and stb's reason; writes are atomic.
#pragma once
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include "pdyolo/data/image.hpp"
#include "pdyolo/io/file.hpp"

namespace pdyolo::data {

// The size a header declares is checked (kMaxImageSide, kMaxImagePixels) before anything is decoded.
inline Image load_image(const std::string& path) {
  const std::vector<char> bytes = io::read_file(path);
  PDYOLO_CHECK(!bytes.empty(), path, ": empty file, not an image");
  PDYOLO_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), path, ": ", bytes.size(), " bytes is too large for an image file");
  int w = 0, h = 0, channels = 0;
  if (stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &channels))
    PDYOLO_CHECK(w <= kMaxImageSide && h <= kMaxImageSide && int64_t{w} * h <= kMaxImagePixels, path, ": the image declares ", w, "x", h,
                 " pixels, more than the ", kMaxImageSide, " a side (and ", kMaxImagePixels, " in all) pdyolo decodes");
  uint8_t* pixels = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                                          &w, &h, &channels, 3);
  PDYOLO_CHECK(pixels != nullptr, path, ": cannot decode image (", stbi_failure_reason(), ")");
  Image img(w, h);
  std::copy(pixels, pixels + static_cast<size_t>(w) * h * 3, img.pixels.begin());
  stbi_image_free(pixels);
  return img;
}

inline void save_image(const std::string& path, const Image& image) {
  const bool png = path.size() >= 4 && path.compare(path.size() - 4, 4, ".png") == 0;
  std::vector<char> encoded;
  auto sink = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<char>*>(context);
    out->insert(out->end(), static_cast<char*>(data), static_cast<char*>(data) + size);
  };
  const int w = static_cast<int>(image.width), h = static_cast<int>(image.height);
  const int ok = png ? stbi_write_png_to_func(sink, &encoded, w, h, 3, image.pixels.data(), w * 3)
                     : stbi_write_jpg_to_func(sink, &encoded, w, h, 3, image.pixels.data(), 92);
  PDYOLO_CHECK(ok != 0, path, ": image encoding failed");
  io::write_file_atomic(path, [&](std::ostream& out) { out.write(encoded.data(), static_cast<std::streamsize>(encoded.size())); });
}

}  // namespace pdyolo::data
