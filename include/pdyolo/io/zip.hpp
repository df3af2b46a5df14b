// Reading ZIP archives as PyTorch writes them (entries stored without compression; ZIP64 records
// when large). The whole archive is held in memory; entries are looked up by name. Every offset and
// length read from the file is checked against the archive's size without overflowing (a crafted
// 64-bit offset cannot wrap around), and each entry's CRC-32 is verified when it is read.
#pragma once
#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "pdyolo/io/file.hpp"

namespace pdyolo::io {

// CRC-32 (IEEE 802.3, as ZIP stores it).
inline uint32_t crc32(const char* data, uint64_t n) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t c = 0xffffffffu;
  for (uint64_t i = 0; i < n; ++i) c = table[(c ^ static_cast<uint8_t>(data[i])) & 0xffu] ^ (c >> 8);
  return c ^ 0xffffffffu;
}

class ZipArchive {
 public:
  explicit ZipArchive(const std::string& path) : path_(path), bytes_(read_file(path)) { read_central_directory(); }
  // An archive already in memory; `name` stands for its file in errors.
  ZipArchive(std::vector<char> bytes, const std::string& name) : path_(name), bytes_(std::move(bytes)) { read_central_directory(); }

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (const auto& [name, entry] : entries_) out.push_back(name);
    return out;
  }
  bool contains(const std::string& name) const { return entries_.count(name) > 0; }

  // The bytes of one stored entry (pointer into the archive, and its size).
  std::pair<const char*, uint64_t> entry(const std::string& name) const {
    auto it = entries_.find(name);
    PDYOLO_CHECK(it != entries_.end(), path_, ": the archive has no entry '", name, "'");
    const Entry& e = it->second;
    PDYOLO_CHECK(e.method == 0, path_, ": entry '", name, "' is compressed (method ", e.method,
                 "); PyTorch archives store entries uncompressed");
    PDYOLO_CHECK(fits(e.local_offset, 30) && u32(e.local_offset) == 0x04034b50u, path_,
                 ": entry '", name, "' has no valid local header (truncated or corrupt archive)");
    const uint64_t data = e.local_offset + 30 + u16(e.local_offset + 26) + u16(e.local_offset + 28);
    PDYOLO_CHECK(fits(data, e.size), path_, ": entry '", name, "' (", e.size, " bytes) runs past the end of the file (truncated archive?)");
    PDYOLO_CHECK(crc32(bytes_.data() + data, e.size) == e.crc, path_, ": entry '", name,
                 "' fails its CRC-32 check (the file is corrupt)");
    return {bytes_.data() + data, e.size};
  }

 private:
  struct Entry {
    uint64_t local_offset = 0, size = 0;
    uint32_t crc = 0;
    uint16_t method = 0;
  };

  // Whether `length` bytes from `offset` lie inside the archive (no overflow for any 64-bit input).
  bool fits(uint64_t offset, uint64_t length) const { return offset <= bytes_.size() && length <= bytes_.size() - offset; }


  uint16_t u16(uint64_t at) const {
    return static_cast<uint16_t>(static_cast<uint8_t>(bytes_[at]) | (static_cast<uint8_t>(bytes_[at + 1]) << 8));
  }
  uint32_t u32(uint64_t at) const { return u16(at) | (static_cast<uint32_t>(u16(at + 2)) << 16); }
  uint64_t u64(uint64_t at) const { return u32(at) | (static_cast<uint64_t>(u32(at + 4)) << 32); }

  void read_central_directory() {
    PDYOLO_CHECK(bytes_.size() >= 22, path_, ": file is too short to be a ZIP archive (", bytes_.size(), " bytes)");
    // The end-of-central-directory record sits in the last 22 + 65535 bytes.
    int64_t eocd = -1;
    const int64_t lowest = std::max<int64_t>(0, static_cast<int64_t>(bytes_.size()) - 22 - 65535);
    for (int64_t at = static_cast<int64_t>(bytes_.size()) - 22; at >= lowest; --at)
      if (u32(static_cast<uint64_t>(at)) == 0x06054b50u) {
        eocd = at;
        break;
      }
    PDYOLO_CHECK(eocd >= 0, path_, ": not a ZIP archive (no end-of-central-directory record; truncated file?)");
    uint64_t count = u16(eocd + 10), dir_size = u32(eocd + 12), dir_offset = u32(eocd + 16);
    if (eocd >= 20 && u32(eocd - 20) == 0x07064b50u) {  // ZIP64 locator → ZIP64 end record
      const uint64_t record = u64(eocd - 20 + 8);
      PDYOLO_CHECK(fits(record, 56) && u32(record) == 0x06064b50u, path_, ": corrupt ZIP64 end record");
      count = u64(record + 32);
      dir_size = u64(record + 40);
      dir_offset = u64(record + 48);
    }
    PDYOLO_CHECK(fits(dir_offset, dir_size), path_, ": the central directory lies past the end of the file (truncated archive?)");
    uint64_t at = dir_offset;
    for (uint64_t i = 0; i < count; ++i) {
      PDYOLO_CHECK(fits(at, 46) && u32(at) == 0x02014b50u, path_, ": corrupt central directory entry ", i);
      Entry e;
      e.method = u16(at + 10);
      e.crc = u32(at + 16);
      e.size = u32(at + 24);
      e.local_offset = u32(at + 42);
      const uint16_t name_len = u16(at + 28), extra_len = u16(at + 30), comment_len = u16(at + 32);
      PDYOLO_CHECK(fits(at + 46, static_cast<uint64_t>(name_len) + extra_len), path_, ": corrupt central directory entry ", i);
      const std::string name(bytes_.data() + at + 46, name_len);
      read_zip64_extra(at + 46 + name_len, extra_len, u32(at + 20), e);
      entries_[name] = e;
      at += 46 + name_len + extra_len + comment_len;
    }
  }

  // ZIP64 extended information: 64-bit values for the fields stored as 0xFFFFFFFF, in order.
  void read_zip64_extra(uint64_t at, uint16_t len, uint32_t compressed32, Entry& e) const {
    const uint64_t end = at + len;
    while (at + 4 <= end) {
      const uint16_t id = u16(at), size = u16(at + 2);
      uint64_t field = at + 4;
      if (id == 0x0001) {
        if (e.size == 0xffffffffu && field + 8 <= end) e.size = u64(field), field += 8;
        if (compressed32 == 0xffffffffu && field + 8 <= end) field += 8;
        if (e.local_offset == 0xffffffffu && field + 8 <= end) e.local_offset = u64(field);
      }
      at += 4 + size;
    }
  }

  std::string path_;
  std::vector<char> bytes_;
  std::map<std::string, Entry> entries_;
};

}  // namespace pdyolo::io
