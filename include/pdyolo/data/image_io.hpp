// Image files through stb_image / stb_image_write (Debian's libstb: link the pdyolo::image target).
// Decoding errors name the file and stb's reason; writes are atomic.
#pragma once
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>

#include <cstring>
#include <utility>

#include "pdyolo/data/image.hpp"
#include "pdyolo/io/file.hpp"

namespace pdyolo::data {

namespace detail {

inline bool starts_with(const std::vector<char>& bytes, const char* magic, size_t n) {
  return bytes.size() >= n && std::memcmp(bytes.data(), magic, n) == 0;
}

// The formats pdyolo decodes: JPEG, PNG and BMP. stb_image knows more (GIF, PSD, PIC, PNM, HDR, TGA),
// but no detection dataset needs them and their decoders carry most of stb's published memory bugs.
inline void check_image_format(const std::vector<char>& bytes, const std::string& path) {
  PDYOLO_CHECK(!bytes.empty(), path, ": empty file, not an image");
  PDYOLO_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), path, ": ", bytes.size(), " bytes is too large for an image file");
  const bool known = starts_with(bytes, "\xFF\xD8\xFF", 3) || starts_with(bytes, "\x89PNG\r\n\x1A\n", 8) || starts_with(bytes, "BM", 2);
  PDYOLO_CHECK(known, path, ": cannot decode image (not a JPEG, PNG or BMP file, the formats pdyolo reads)");
}

// Debian's stb_image (2022-09) trusts the 16 code counts of a JPEG Huffman table: more than 256
// codes in all write past the table (tests/fuzz/fuzz_image found it). Every table stb could read is
// checked first. Before the first scan, markers are walked as stb walks them (bytes between
// segments skipped one by one, each segment by its length); after it, where entropy-coded data
// and further segments mix, every 0xFF 0xC4 (define-Huffman-table) marker is checked — 0xFF inside
// coded data is always followed by 0x00, so real data cannot look like one.
inline void check_huffman_tables_at(const std::vector<char>& b, size_t at, const std::string& path) {
  auto byte = [&b](size_t i) { return i < b.size() ? static_cast<uint8_t>(b[i]) : 0; };  // 0 past the end, as stb reads
  int64_t left = (byte(at) << 8 | byte(at + 1)) - 2;
  at += 2;
  while (left > 0 && at < b.size()) {
    int64_t codes = 0;
    for (size_t i = 1; i <= 16; ++i) codes += byte(at + i);
    PDYOLO_CHECK(codes <= 256, path, ": corrupt JPEG: a Huffman table at byte ", at, " declares ", codes, " codes (at most 256)");
    at += 17 + static_cast<size_t>(codes);
    left -= 17 + codes;
  }
}

inline void check_jpeg_huffman_tables(const std::vector<char>& b, const std::string& path) {
  auto byte = [&b](size_t i) { return i < b.size() ? static_cast<uint8_t>(b[i]) : 0; };
  size_t at = 2;  // after the start-of-image marker
  while (at < b.size()) {
    if (byte(at) != 0xFF) {  // not a marker: stb skips it
      ++at;
      continue;
    }
    while (at < b.size() && byte(at) == 0xFF) ++at;
    const uint8_t marker = byte(at++);
    if (marker == 0xD9) return;       // end of image
    if (marker == 0xDA) break;        // start of scan: coded data follows
    if (marker == 0xC4) check_huffman_tables_at(b, at, path);
    at += static_cast<size_t>(byte(at) << 8 | byte(at + 1));  // the segment, length included
  }
  for (; at + 1 < b.size(); ++at)
    if (byte(at) == 0xFF && byte(at + 1) == 0xC4) check_huffman_tables_at(b, at + 2, path);
}

// Where a BMP's pixel rows end: from the offset its file header names, `h` rows of w × bits-per-pixel
// bits, each padded to 4 bytes (the last row's padding may be missing). stb decodes no compressed BMP,
// so every complete file it accepts holds them all. Fields past the end read as 0.
inline int64_t bmp_pixels_end(const std::vector<char>& b, int64_t w, int64_t h) {
  auto le = [&b](size_t at, int n) {
    int64_t v = 0;
    for (int i = n - 1; i >= 0; --i) v = v << 8 | (at + i < b.size() ? static_cast<uint8_t>(b[at + i]) : 0);
    return v;
  };
  const int64_t offset = le(10, 4), header_size = le(14, 4);
  const int64_t bits_per_pixel = le(header_size == 12 ? 24 : 28, 2);  // OS/2 core header, or the Windows ones
  const int64_t row_bytes = (w * bits_per_pixel + 7) / 8, stride = (row_bytes + 3) / 4 * 4;
  return offset + stride * (h - 1) + row_bytes;
}

// The fewest bytes a complete file of this format can hold for w × h pixels (w, h ≥ 1). A BMP holds
// all its rows. The compressed formats, halved for slack: a JPEG codes at least one bit per 8×8 block
// (the DC term of every block of its finest component), a PNG at least one bit per pixel before
// deflate, which compresses at most 1032:1. stb fills a truncated file with zeros, so without this a
// 26-byte JPEG declaring 15011×8263 pixels decoded to a 372 MB image (1 GB at its peak), and a BMP
// missing its last rows decoded with them black.
inline int64_t min_complete_bytes(const std::vector<char>& bytes, int64_t w, int64_t h) {
  if (bytes[0] == 'B') return bmp_pixels_end(bytes, w, h);
  const int64_t bits = bytes[0] == '\xFF' ? ((w + 7) / 8) * ((h + 7) / 8) : w * h / 1032;
  return bits / 16;
}

}  // namespace detail

// Width and height an image file declares, after the same format checks as decode_image (nothing is
// decoded). Errors name the file.
inline std::pair<int, int> image_size(const std::vector<char>& bytes, const std::string& path) {
  detail::check_image_format(bytes, path);
  if (bytes[0] == '\xFF') detail::check_jpeg_huffman_tables(bytes, path);
  int w = 0, h = 0, channels = 0;
  PDYOLO_CHECK(stbi_info_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()), &w, &h, &channels),
               path, ": cannot decode image (", stbi_failure_reason(), ")");
  PDYOLO_CHECK(w >= 1 && h >= 1, path, ": the image declares ", w, "x", h, " pixels; an image needs at least one");
  PDYOLO_CHECK(w <= kMaxImageSide && h <= kMaxImageSide && int64_t{w} * h <= kMaxImagePixels, path, ": the image declares ", w, "x", h,
               " pixels, more than the ", kMaxImageSide, " a side (and ", kMaxImagePixels, " in all) pdyolo decodes");
  const int64_t least = detail::min_complete_bytes(bytes, w, h);
  PDYOLO_CHECK(static_cast<int64_t>(bytes.size()) >= least, path, ": truncated: the image declares ", w, "x", h, " pixels, which take at least ",
               least, " bytes, but the file holds ", bytes.size());
  return {w, h};
}

// An encoded JPEG, PNG or BMP image in memory → RGB pixels; `path` names the source in errors. The
// size the header declares is checked (kMaxImageSide, kMaxImagePixels) before anything is decoded.
inline Image decode_image(const std::vector<char>& bytes, const std::string& path) {
  const auto [declared_w, declared_h] = image_size(bytes, path);
  int w = 0, h = 0, channels = 0;
  uint8_t* pixels = stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()), static_cast<int>(bytes.size()),
                                          &w, &h, &channels, 3);
  PDYOLO_CHECK(pixels != nullptr, path, ": cannot decode image (", stbi_failure_reason(), ")");
  if (w != declared_w || h != declared_h) {  // (the decoder must keep to the size checked above)
    stbi_image_free(pixels);
    throw_error(path, ": the image decodes to ", w, "x", h, " pixels but declares ", declared_w, "x", declared_h);
  }
  Image img(w, h);
  std::copy(pixels, pixels + static_cast<size_t>(w) * h * 3, img.pixels.begin());
  stbi_image_free(pixels);
  return img;
}

inline Image load_image(const std::string& path) { return decode_image(io::read_file(path), path); }

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
