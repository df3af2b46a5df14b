// NumPy .npy files (format versions 1.0–3.0 read, 1.0 written): the magic "\x93NUMPY", a version,
// a header length, a Python-literal dict {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
// padded so the data starts 64-byte aligned, then the raw C-order data.
#pragma once
#include <cstring>
#include <string>

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/io/file.hpp"

namespace pdyolo::io {

inline const char* npy_descr(DType t) {
  switch (t) {
    case DType::f32: return "<f4";
    case DType::f16: return "<f2";
    case DType::i8: return "|i1";
    case DType::u8: return "|u1";
    case DType::i32: return "<i4";
    case DType::i64: return "<i8";
  }
  return "?";
}

namespace detail {

// The text after `'key':` in the header dict, with leading spaces skipped.
inline size_t npy_field(const std::string& header, const std::string& key, const std::string& path) {
  const size_t at = header.find("'" + key + "'");
  PDYOLO_CHECK(at != std::string::npos, path, ": npy header has no field '", key, "'");
  size_t pos = header.find(':', at);
  PDYOLO_CHECK(pos != std::string::npos, path, ": npy header field '", key, "' has no value");
  ++pos;
  while (pos < header.size() && header[pos] == ' ') ++pos;
  return pos;
}

inline DType npy_parse_descr(const std::string& header, const std::string& path) {
  size_t pos = npy_field(header, "descr", path);
  PDYOLO_CHECK(pos < header.size() && header[pos] == '\'', path, ": npy field 'descr' is not a string");
  const size_t end = header.find('\'', pos + 1);
  PDYOLO_CHECK(end != std::string::npos, path, ": npy field 'descr' is unterminated");
  std::string descr = header.substr(pos + 1, end - pos - 1);
  if (descr.size() == 3 && descr[0] == '=') descr[0] = '<';  // native order on little-endian hosts
  for (DType t : {DType::f32, DType::f16, DType::i8, DType::u8, DType::i32, DType::i64}) {
    const std::string d = npy_descr(t);
    if (descr == d || (d[0] == '|' && descr == "<" + d.substr(1))) return t;
  }
  throw_error(path, ": npy field 'descr': unsupported dtype '", descr,
              "' (supported: <f4, <f2, |i1, |u1, <i4, <i8; big-endian is not)");
}

inline Shape npy_parse_shape(const std::string& header, const std::string& path) {
  size_t pos = npy_field(header, "shape", path);
  PDYOLO_CHECK(pos < header.size() && header[pos] == '(', path, ": npy field 'shape' is not a tuple");
  const size_t end = header.find(')', pos);
  PDYOLO_CHECK(end != std::string::npos, path, ": npy field 'shape' is unterminated");
  Shape shape;
  std::string number;
  for (size_t i = pos + 1; i <= end; ++i) {
    const char c = header[i];
    if (c >= '0' && c <= '9') {
      number += c;
    } else if (c == ',' || c == ')') {
      PDYOLO_CHECK(number.size() <= 15, path, ": npy field 'shape' holds the dimension ", number, ", too large");
      if (!number.empty()) shape.push_back(std::stoll(number));
      number.clear();
    } else if (c != ' ' && c != 'L') {
      throw_error(path, ": npy field 'shape' holds '", c, "'");
    }
  }
  PDYOLO_CHECK(shape.size() <= static_cast<size_t>(kMaxDims), path, ": npy field 'shape' has ", shape.size(),
               " dimensions; at most ", kMaxDims, " are supported");
  return shape;
}

}  // namespace detail

// An .npy file's bytes → tensor; `path` names the source in errors.
inline Tensor parse_npy(const std::vector<char>& bytes, const std::string& path) {
  PDYOLO_CHECK(bytes.size() >= 10 && std::memcmp(bytes.data(), "\x93NUMPY", 6) == 0, path,
               ": not an npy file (bad magic)");
  const int major = static_cast<uint8_t>(bytes[6]);
  PDYOLO_CHECK(major >= 1 && major <= 3, path, ": unsupported npy format version ", major);
  size_t header_len = 0, prefix = 0;
  if (major == 1) {
    header_len = static_cast<uint8_t>(bytes[8]) | (static_cast<uint8_t>(bytes[9]) << 8);
    prefix = 10;
  } else {
    PDYOLO_CHECK(bytes.size() >= 12, path, ": npy header is truncated");
    for (int i = 0; i < 4; ++i) header_len |= static_cast<size_t>(static_cast<uint8_t>(bytes[8 + i])) << (8 * i);
    prefix = 12;
  }
  PDYOLO_CHECK(prefix + header_len <= bytes.size(), path, ": npy header length ", header_len,
               " exceeds the file size ", bytes.size(), " (truncated file?)");
  const std::string header(bytes.data() + prefix, header_len);
  const DType dtype = detail::npy_parse_descr(header, path);
  const size_t fortran = detail::npy_field(header, "fortran_order", path);
  PDYOLO_CHECK(header.compare(fortran, 5, "False") == 0, path,
               ": npy field 'fortran_order': Fortran-ordered arrays are not supported (save with C order)");
  const Shape shape = detail::npy_parse_shape(header, path);
  const size_t nbytes = static_cast<size_t>(checked_numel(shape, path + ": npy field 'shape'")) * dtype_size(dtype);
  const size_t available = bytes.size() - prefix - header_len;
  PDYOLO_CHECK(available >= nbytes, path, ": npy data holds ", available, " bytes but shape ", shape_str(shape),
               " of ", npy_descr(dtype), " needs ", nbytes, " (truncated file?)");
  Tensor t = Tensor::empty(shape, dtype);
  if (nbytes) std::memcpy(t.raw_data(), bytes.data() + prefix + header_len, nbytes);
  return t;
}

inline Tensor load_npy(const std::string& path) { return parse_npy(read_file(path), path); }

inline void save_npy(const std::string& path, const Tensor& tensor) {
  PDYOLO_CHECK(tensor.device().type == DeviceType::cpu, path, ": tensor is on ", tensor.device().str());
  const Tensor t = tensor.is_contiguous() ? tensor : contiguous_copy(tensor);
  std::string shape = "(";
  for (size_t i = 0; i < t.shape().size(); ++i) shape += std::to_string(t.shape()[i]) + (t.shape().size() == 1 ? "," : (i + 1 < t.shape().size() ? ", " : ""));
  shape += ")";
  std::string header = std::string("{'descr': '") + npy_descr(t.dtype()) + "', 'fortran_order': False, 'shape': " + shape + ", }";
  const size_t total = 10 + header.size() + 1;
  header.append((64 - total % 64) % 64, ' ');
  header += '\n';
  write_file_atomic(path, [&](std::ostream& out) {
    const char prefix[8] = {'\x93', 'N', 'U', 'M', 'P', 'Y', 1, 0};
    out.write(prefix, 8);
    const uint16_t len = static_cast<uint16_t>(header.size());
    const char len_bytes[2] = {static_cast<char>(len & 0xff), static_cast<char>(len >> 8)};
    out.write(len_bytes, 2);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    out.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.numel() * dtype_size(t.dtype())));
  });
}

}  // namespace pdyolo::io
