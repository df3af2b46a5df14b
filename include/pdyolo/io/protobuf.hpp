// A protocol-buffers writer: the wire format, enough to write messages whose schema the caller
// knows (io/onnx.hpp writes ONNX's). No library and no generated code: a message is built field by
// field into bytes, a nested message is written first and then added as a length-delimited field.
//
// Wire format (protobuf.dev/programming-guides/encoding): every field is a key, varint
// (field_number << 3 | wire_type), then its value —
//   0 varint            integers and enums, 7 bits a byte, low first, high bit = more follows
//                       (a negative int32/int64 is its 64-bit two's complement: 10 bytes)
//   1 64-bit            fixed64, double, little-endian
//   2 length-delimited  a varint length, then the bytes: strings, bytes, nested messages and
//                       packed repeated scalars
//   5 32-bit            fixed32, float, little-endian
#pragma once
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace pdyolo::io::protobuf {

// Floats and raw tensor data are written as they lie in memory: little-endian, as the format says.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "protobuf: the writer assumes a little-endian host (x86, AArch64)");

enum class WireType : uint8_t { varint = 0, fixed64 = 1, length_delimited = 2, fixed32 = 5 };

class Message {
 public:
  // A varint field (int32, int64, uint64, bool, enum).
  Message& add_varint(int field, uint64_t value) {
    key(field, WireType::varint);
    varint(value);
    return *this;
  }
  Message& add_int(int field, int64_t value) { return add_varint(field, static_cast<uint64_t>(value)); }
  Message& add_float(int field, float value) {
    key(field, WireType::fixed32);
    uint32_t bits = 0;
    std::memcpy(&bits, &value, sizeof bits);
    for (int i = 0; i < 4; ++i) bytes_.push_back(static_cast<char>(bits >> (8 * i)));
    return *this;
  }
  // A length-delimited field: a string, raw bytes or a nested message's bytes.
  Message& add_bytes(int field, const void* data, size_t size) {
    key(field, WireType::length_delimited);
    varint(size);
    bytes_.append(static_cast<const char*>(data), size);
    return *this;
  }
  Message& add_string(int field, const std::string& s) { return add_bytes(field, s.data(), s.size()); }
  Message& add_message(int field, const Message& m) { return add_bytes(field, m.bytes_.data(), m.bytes_.size()); }
  // Packed repeated varints / floats (one length-delimited field).
  Message& add_packed_ints(int field, const std::vector<int64_t>& values) {
    Message packed;
    for (int64_t v : values) packed.varint(static_cast<uint64_t>(v));
    return add_bytes(field, packed.bytes_.data(), packed.bytes_.size());
  }
  Message& add_packed_floats(int field, const std::vector<float>& values) {
    return add_bytes(field, values.data(), values.size() * sizeof(float));
  }

  const std::string& bytes() const { return bytes_; }
  size_t size() const { return bytes_.size(); }

 private:
  void key(int field, WireType type) { varint(static_cast<uint64_t>(field) << 3 | static_cast<uint64_t>(type)); }
  void varint(uint64_t v) {
    while (v >= 0x80) {
      bytes_.push_back(static_cast<char>(v | 0x80));
      v >>= 7;
    }
    bytes_.push_back(static_cast<char>(v));
  }
  std::string bytes_;
};

}  // namespace pdyolo::io::protobuf
