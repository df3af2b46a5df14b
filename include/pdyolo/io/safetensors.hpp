// safetensors (the Hugging Face format): 8-byte little-endian header length, a JSON header
//   {"name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, "__metadata__": {...}}
// padded with spaces to a multiple of 8 bytes, then the raw little-endian tensor bytes.
// Offsets are relative to the data section and must tile it exactly, as the reference reader checks.
#pragma once
#include <algorithm>
#include <cstring>
#include <map>
#include <string>

#include "pdyolo/core/tensor.hpp"
#include "pdyolo/io/file.hpp"
#include "pdyolo/io/json.hpp"

namespace pdyolo::io {

// The reference reader rejects larger headers (a guard against memory bombs); so do we.
constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

struct SafetensorsContent {
  std::map<std::string, Tensor> tensors;
  std::map<std::string, std::string> metadata;
};

inline const char* safetensors_dtype(DType t) {
  switch (t) {
    case DType::f32: return "F32";
    case DType::f16: return "F16";
    case DType::i8: return "I8";
    case DType::u8: return "U8";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
  }
  return "?";
}

inline bool parse_safetensors_dtype(const std::string& s, DType& out) {
  for (DType t : {DType::f32, DType::f16, DType::i8, DType::u8, DType::i32, DType::i64})
    if (s == safetensors_dtype(t)) {
      out = t;
      return true;
    }
  return false;
}

// What a safetensors file of `tensors` is made of: its JSON header (padded to a multiple of 8 bytes)
// and the bytes of tensor data after it. The file is 8 + header.size() + data_bytes long.
struct SafetensorsLayout {
  std::string header;
  size_t data_bytes = 0;
};

inline SafetensorsLayout safetensors_layout(const std::map<std::string, Tensor>& tensors, const std::map<std::string, std::string>& metadata,
                                            const std::string& path) {
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      header += (first ? "" : ",") + json_quote(k) + ":" + json_quote(v);
      first = false;
    }
    header += "}";
  }
  size_t offset = 0;
  for (const auto& [name, t] : tensors) {
    PDYOLO_CHECK(name != "__metadata__", path, ": a tensor may not be named __metadata__");
    PDYOLO_CHECK(t.device().type == DeviceType::cpu, path, ": tensor '", name, "' is on ", t.device().str());
    const size_t nbytes = static_cast<size_t>(t.numel()) * dtype_size(t.dtype());
    std::string shape = "[";
    for (size_t i = 0; i < t.shape().size(); ++i) shape += (i ? "," : "") + std::to_string(t.shape()[i]);
    shape += "]";
    header += (header.size() > 1 ? "," : "") + json_quote(name) + ":{\"dtype\":\"" + safetensors_dtype(t.dtype()) +
              "\",\"shape\":" + shape + ",\"data_offsets\":[" + std::to_string(offset) + "," +
              std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  return {std::move(header), offset};
}

inline void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                             const std::map<std::string, std::string>& metadata = {}) {
  const SafetensorsLayout layout = safetensors_layout(tensors, metadata, path);
  std::vector<Tensor> dense;
  for (const auto& [name, t] : tensors) dense.push_back(t.is_contiguous() ? t : contiguous_copy(t));
  write_file_atomic(path, [&](std::ostream& out) {
    uint8_t length[8];
    uint64_t n = layout.header.size();
    for (int i = 0; i < 8; ++i) length[i] = static_cast<uint8_t>(n >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(layout.header.data(), static_cast<std::streamsize>(layout.header.size()));
    for (const Tensor& t : dense)
      out.write(static_cast<const char*>(t.raw_data()), static_cast<std::streamsize>(t.numel() * dtype_size(t.dtype())));
  });
}

namespace detail {
// The header length in a file's first 8 bytes (little-endian), checked against the file's size.
inline uint64_t safetensors_header_length(const std::vector<char>& first_bytes, uint64_t file_size, const std::string& path) {
  PDYOLO_CHECK(first_bytes.size() >= 8, path, ": file is ", first_bytes.size(), " bytes, too short for a safetensors header");
  uint64_t header_len = 0;
  for (int i = 0; i < 8; ++i) header_len |= static_cast<uint64_t>(static_cast<uint8_t>(first_bytes[static_cast<size_t>(i)])) << (8 * i);
  PDYOLO_CHECK(header_len <= kMaxSafetensorsHeader, path, ": header length ", header_len,
               " is larger than the 100 MB the format allows");
  PDYOLO_CHECK(header_len <= file_size - 8, path, ": header length ", header_len, " exceeds the file size ", file_size,
               " (truncated file?)");
  return header_len;
}

// The JSON header that follows the length (bytes holds at least 8 + header_len bytes).
inline Value parse_safetensors_header(const std::vector<char>& bytes, uint64_t header_len, const std::string& path) {
  const std::string header_text(bytes.data() + 8, static_cast<size_t>(header_len));
  PDYOLO_CHECK(!header_text.empty() && header_text[0] == '{', path, ": header does not start with '{'");
  Value header = parse_json(header_text, path + " (header)");
  PDYOLO_CHECK(header.is(Value::Kind::dict), path, ": header is not a JSON object");
  return header;
}

inline std::map<std::string, std::string> safetensors_metadata(const Value& entry, const std::string& path) {
  PDYOLO_CHECK(entry.is(Value::Kind::dict), path, ": field '__metadata__' is not an object");
  std::map<std::string, std::string> metadata;
  for (const auto& [k, v] : entry.dict) {
    PDYOLO_CHECK(v.is(Value::Kind::string), path, ": metadata '", k, "' is not a string");
    metadata[k] = v.str;
  }
  return metadata;
}
}  // namespace detail

// A safetensors file's bytes → tensors and metadata; `path` names the source in errors.
inline SafetensorsContent parse_safetensors(const std::vector<char>& bytes, const std::string& path) {
  const uint64_t header_len = detail::safetensors_header_length(bytes, bytes.size(), path);
  const Value header = detail::parse_safetensors_header(bytes, header_len, path);
  const char* data = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;

  SafetensorsContent content;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  for (const auto& [name, entry] : header.dict) {
    if (name == "__metadata__") {
      content.metadata = detail::safetensors_metadata(entry, path);
      continue;
    }
    const std::string where = path + ": tensor '" + name + "'";
    PDYOLO_CHECK(entry.is(Value::Kind::dict), where, " is not an object");
    const Value* dtype = entry.find("dtype");
    const Value* shape = entry.find("shape");
    const Value* offsets = entry.find("data_offsets");
    PDYOLO_CHECK(dtype && dtype->is(Value::Kind::string), where, ": field 'dtype' missing or not a string");
    PDYOLO_CHECK(shape && shape->is(Value::Kind::list), where, ": field 'shape' missing or not an array");
    PDYOLO_CHECK(offsets && offsets->is(Value::Kind::list) && offsets->items.size() == 2, where,
                 ": field 'data_offsets' missing or not [begin, end]");
    DType dt;
    PDYOLO_CHECK(parse_safetensors_dtype(dtype->str, dt), where, ": field 'dtype': unsupported dtype '",
                 dtype->str, "' (supported: F32, F16, I8, U8, I32, I64)");
    Shape dims;
    for (const Value& d : shape->items) {
      PDYOLO_CHECK(d.is(Value::Kind::integer) && d.integer >= 0, where,
                   ": field 'shape' holds a value that is not a non-negative integer");
      dims.push_back(d.integer);
    }
    PDYOLO_CHECK(dims.size() <= static_cast<size_t>(kMaxDims), where, ": field 'shape' has ", dims.size(),
                 " dimensions; at most ", kMaxDims, " are supported");
    for (const Value& o : offsets->items)
      PDYOLO_CHECK(o.is(Value::Kind::integer) && o.integer >= 0, where,
                   ": field 'data_offsets' holds a value that is not a non-negative integer");
    const uint64_t begin = static_cast<uint64_t>(offsets->items[0].integer);
    const uint64_t end = static_cast<uint64_t>(offsets->items[1].integer);
    PDYOLO_CHECK(begin <= end && end <= data_size, where, ": field 'data_offsets' [", begin, ", ", end,
                 "] lies outside the data section of ", data_size, " bytes (truncated file?)");
    const uint64_t expected = static_cast<uint64_t>(checked_numel(dims, where + ": field 'shape'")) * dtype_size(dt);
    PDYOLO_CHECK(end - begin == expected, where, ": field 'data_offsets' spans ", end - begin, " bytes but shape ",
                 shape_str(dims), " of ", dtype->str, " needs ", expected);
    Tensor t = Tensor::empty(dims, dt);
    if (expected) std::memcpy(t.raw_data(), data + begin, expected);
    content.tensors[name] = t;
    ranges.emplace_back(begin, end);
  }
  std::sort(ranges.begin(), ranges.end());
  uint64_t cursor = 0;
  for (const auto& [begin, end] : ranges) {
    PDYOLO_CHECK(begin == cursor, path, ": field 'data_offsets': tensor data overlaps or leaves a gap at byte ", cursor);
    cursor = end;
  }
  PDYOLO_CHECK(cursor == data_size, path, ": ", data_size - cursor, " bytes after the last tensor are not described by the header");
  return content;
}

inline SafetensorsContent load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

// Only a file's metadata: reads the header, not the tensors (cheap for a large model). The tensors'
// entries are checked when the file is loaded.
inline std::map<std::string, std::string> load_safetensors_metadata(const std::string& path) {
  const std::vector<char> first = read_file_prefix(path, 8);  // (checks that the path is a readable file)
  const uint64_t header_len = detail::safetensors_header_length(first, std::filesystem::file_size(path), path);
  const Value header = detail::parse_safetensors_header(read_file_prefix(path, 8 + header_len), header_len, path);
  const Value* metadata = header.find("__metadata__");
  return metadata ? detail::safetensors_metadata(*metadata, path) : std::map<std::string, std::string>{};
}

}  // namespace pdyolo::io
