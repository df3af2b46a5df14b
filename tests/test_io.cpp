// safetensors and .npy: round trips for every dtype, files written by NumPy, the shared fixtures,
// and clear errors naming the file and field for truncated or malformed input.
#include "test_main.hpp"

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "pdyolo/io/protobuf.hpp"
#include "test_util.hpp"

using namespace pdyolo;

namespace {

const std::string kData = std::string(PDYOLO_SOURCE_DIR) + "/tests/data/";

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  const auto v = io::read_file(path);
  return std::string(v.begin(), v.end());
}

// A safetensors file assembled by hand from the format description.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((header.size() >> (8 * i)) & 0xff);
  return out + header + data;
}

std::map<std::string, Tensor> one_of_each_dtype() {
  return {
      {"model.0.conv.weight", Tensor::normal({2, 3, 1, 1})},
      {"half", Tensor::from_vector({0.5f, -2.0f, 1000.0f}, {3}).to(DType::f16)},
      {"i8", Tensor::from_vector(std::vector<int8_t>{-128, 0, 127}, {3})},
      {"u8", Tensor::from_vector(std::vector<uint8_t>{0, 255}, {1, 2})},
      {"i32", Tensor::from_vector(std::vector<int32_t>{-5, 7}, {2})},
      {"i64", Tensor::from_vector(std::vector<int64_t>{int64_t{1} << 40, -1}, {2})},
      {"scalar", Tensor::scalar(3.0f)},
      {"empty", Tensor::zeros({0, 4})},
      {"six_d", Tensor::normal({1, 2, 1, 2, 1, 2})},
  };
}

}  // namespace

TEST_CASE("safetensors round trip keeps names, dtypes, shapes, values and metadata") {
  const std::string path = test::temp_path("roundtrip.safetensors");
  const auto tensors = one_of_each_dtype();
  io::save_safetensors(path, tensors, {{"format", "pt"}, {"note", "quote \" and \\ backslash"}});
  const auto loaded = io::load_safetensors(path);
  CHECK(loaded.metadata.at("format") == "pt");
  CHECK(loaded.metadata.at("note") == "quote \" and \\ backslash");
  REQUIRE(loaded.tensors.size() == tensors.size());
  for (const auto& entry : tensors) {
    const std::string& name = entry.first;
    const Tensor& t = entry.second;
    CAPTURE(name);
    const Tensor& u = loaded.tensors.at(name);
    CHECK(u.dtype() == t.dtype());
    CHECK(u.shape() == t.shape());
    CHECK(u.to_vector() == t.to_vector());
  }
  // Non-contiguous views are written as their values.
  io::save_safetensors(path, {{"t", Tensor::from_vector({1, 2, 3, 4}, {2, 2}).transpose(0, 1)}});
  CHECK(io::load_safetensors(path).tensors.at("t").to_vector() == std::vector<float>{1, 3, 2, 4});
  std::remove(path.c_str());
}

TEST_CASE("safetensors bytes follow the format exactly") {
  // The layout the reference writer produces: compact JSON, __metadata__ first, padded with spaces to 8 bytes.
  const std::string header = R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  const float values[2] = {1.5f, -2.0f};
  const std::string data(reinterpret_cast<const char*>(values), 8);
  const std::string path = test::temp_path("handmade.safetensors");
  write_bytes(path, safetensors_bytes(padded, data));
  const auto loaded = io::load_safetensors(path);
  CHECK(loaded.tensors.at("a").to_vector() == std::vector<float>{1.5f, -2.0f});
  const std::string ours = test::temp_path("ours.safetensors");
  io::save_safetensors(ours, {{"a", loaded.tensors.at("a")}}, {{"format", "pt"}});
  CHECK(read_bytes(ours) == read_bytes(path));
  // Whitespace and key order inside the header are free.
  write_bytes(path, safetensors_bytes("{ \"a\" : { \"data_offsets\" : [0, 8], \"shape\" : [2], \"dtype\" : \"F32\" } }", data));
  CHECK(io::load_safetensors(path).tensors.at("a").to_vector()[1] == -2.0f);
  std::remove(path.c_str());
  std::remove(ours.c_str());
}

TEST_CASE("safetensors: malformed files are reported with the file and the field") {
  const std::string path = test::temp_path("bad.safetensors");
  const std::string data(8, '\0');
  auto error_for = [&](const std::string& bytes) {
    write_bytes(path, bytes);
    return test::error_of([&] { io::load_safetensors(path); });
  };
  auto entry = [](const std::string& body) { return "{\"a\":{" + body + "}}"; };
  const std::string good = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";

  CHECK(error_for("abc").find("too short") != std::string::npos);
  CHECK(error_for(std::string("\x00\x00\x00\x00\x01\x00\x00\x00{}", 10)).find("larger than the 100 MB") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(good), data).substr(0, 20)).find("exceeds the file size") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(good), data.substr(0, 4))).find("outside the data section") != std::string::npos);
  CHECK(error_for(safetensors_bytes("[1,2]", "")).find("does not start with '{'") != std::string::npos);
  CHECK(error_for(safetensors_bytes("{\"a\":{\"dtype\":", data)).find("invalid JSON") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F64","shape":[1],"data_offsets":[0,8])"), data))
            .find("field 'dtype': unsupported dtype 'F64'") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("shape":[2],"data_offsets":[0,8])"), data)).find("field 'dtype'") !=
        std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), data))
            .find("needs 12") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[-2],"data_offsets":[0,8])"), data))
            .find("field 'shape'") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[2],"data_offsets":[0])"), data))
            .find("field 'data_offsets'") != std::string::npos);
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[1],"data_offsets":[0,4])"), data))
            .find("not described") != std::string::npos);
  const std::string two = R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})";
  CHECK(error_for(safetensors_bytes(two, data)).find("overlaps") != std::string::npos);
  const std::string err = error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[3],"data_offsets":[0,8])"), data));
  CHECK(err.find(path) != std::string::npos);
  CHECK(err.find("tensor 'a'") != std::string::npos);
  CHECK(test::error_of([] { io::load_safetensors("/nonexistent/x.safetensors"); }).find("/nonexistent/x.safetensors: no such file") !=
        std::string::npos);
  // A shape whose element count wraps around 2^64 once loaded, then read out of bounds.
  CHECK(error_for(safetensors_bytes(entry(R"("dtype":"F32","shape":[4294967296,4294967296,4294967296],"data_offsets":[0,8])"), data))
            .find("field 'shape': shape [4294967296, 4294967296, 4294967296] has more than 2^48 elements") != std::string::npos);
  std::remove(path.c_str());
}

TEST_CASE("npy: files written by NumPy load with the right dtype, shape and values") {
  const Tensor f32 = io::load_npy(kData + "f32_2x3.npy");
  CHECK(f32.dtype() == DType::f32);
  CHECK(f32.shape() == Shape{2, 3});
  CHECK(f32.to_vector() == std::vector<float>{-2.5f, -1.5f, -0.5f, 0.5f, 1.5f, 2.5f});
  const Tensor f16 = io::load_npy(kData + "f16_4.npy");
  CHECK(f16.dtype() == DType::f16);
  CHECK(f16.to_vector() == std::vector<float>{0.5f, -1.0f, 65504.0f, half_bits_to_float(float_to_half_bits(0.1f))});
  CHECK(io::load_npy(kData + "i8_2x2.npy").to_vector() == std::vector<float>{-128, -1, 0, 127});
  CHECK(io::load_npy(kData + "u8_3.npy").to_vector() == std::vector<float>{0, 128, 255});
  const Tensor i32 = io::load_npy(kData + "i32_1x2x2.npy");
  CHECK(i32.shape() == Shape{1, 2, 2});
  CHECK(i32.data<int32_t>()[3] == 2147483647);
  const Tensor i64 = io::load_npy(kData + "i64_2.npy");
  CHECK(i64.data<int64_t>()[0] == -(int64_t{1} << 40));
  CHECK(i64.data<int64_t>()[1] == (int64_t{1} << 40) + 3);
  const Tensor scalar = io::load_npy(kData + "f32_scalar.npy");
  CHECK(scalar.dim() == 0);
  CHECK(scalar.item() == 3.25f);
}

TEST_CASE("npy: what we write is byte-identical to what NumPy writes") {
  for (const char* name : {"f32_2x3.npy", "f16_4.npy", "i8_2x2.npy", "u8_3.npy", "i32_1x2x2.npy", "i64_2.npy",
                           "f32_scalar.npy"}) {
    CAPTURE(name);
    const std::string ours = test::temp_path(name);
    io::save_npy(ours, io::load_npy(kData + name));
    CHECK(read_bytes(ours) == read_bytes(kData + name));
    std::remove(ours.c_str());
  }
}

TEST_CASE("npy: round trip of views and large shapes") {
  const std::string path = test::temp_path("view.npy");
  const Tensor t = Tensor::normal({3, 4, 5}).permute({2, 0, 1});
  io::save_npy(path, t);
  CHECK(io::load_npy(path).to_vector() == t.contiguous().to_vector());
  std::remove(path.c_str());
}

TEST_CASE("npy: bad input names the file and the field") {
  CHECK(test::error_of([] { io::load_npy(kData + "f32_fortran.npy"); }).find("field 'fortran_order'") != std::string::npos);
  const std::string f64 = test::error_of([] { io::load_npy(kData + "f64_2.npy"); });
  CHECK(f64.find("f64_2.npy") != std::string::npos);
  CHECK(f64.find("field 'descr': unsupported dtype '<f8'") != std::string::npos);
  const std::string path = test::temp_path("bad.npy");
  const std::string good = read_bytes(kData + "f32_2x3.npy");
  write_bytes(path, "not numpy at all");
  CHECK(test::error_of([&] { io::load_npy(path); }).find("bad magic") != std::string::npos);
  write_bytes(path, good.substr(0, 40));
  CHECK(test::error_of([&] { io::load_npy(path); }).find("header length") != std::string::npos);
  write_bytes(path, good.substr(0, good.size() - 4));
  const std::string truncated = test::error_of([&] { io::load_npy(path); });
  CHECK(truncated.find("truncated") != std::string::npos);
  CHECK(truncated.find(path) != std::string::npos);
  std::string big_endian = good;
  big_endian.replace(big_endian.find("<f4"), 3, ">f4");
  write_bytes(path, big_endian);
  CHECK(test::error_of([&] { io::load_npy(path); }).find("'>f4'") != std::string::npos);
  std::string no_shape = good;
  no_shape.replace(no_shape.find("'shape'"), 7, "'shope'");
  write_bytes(path, no_shape);
  CHECK(test::error_of([&] { io::load_npy(path); }).find("no field 'shape'") != std::string::npos);
  // A dimension too large for stoll (once an uncaught std::out_of_range), and dimensions whose
  // product wraps (once a heap overflow in the GEMM that read the tensor).
  auto npy_with_shape = [&](const std::string& shape) {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
    header.append(64 - (10 + header.size() + 1) % 64, ' ');
    header += '\n';
    std::string bytes = std::string("\x93NUMPY\x01\x00", 8);
    bytes += static_cast<char>(header.size() & 0xff);
    bytes += static_cast<char>(header.size() >> 8);
    return bytes + header + std::string(24, '\0');
  };
  write_bytes(path, npy_with_shape("(2, 3)"));
  CHECK(io::load_npy(path).shape() == Shape{2, 3});  // the crafted file itself is good
  write_bytes(path, npy_with_shape("(99999999999999999999999999999999,)"));
  CHECK(test::error_of([&] { io::load_npy(path); }).find("npy field 'shape' holds the dimension 99999999999999999999999999999999, too large") !=
        std::string::npos);
  write_bytes(path, npy_with_shape("(4294967296, 4294967296, 4294967296)"));
  CHECK(test::error_of([&] { io::load_npy(path); }).find("has more than 2^48 elements") != std::string::npos);
  // No elements, but strides of 2^80 (found by fuzz_npy in CI): refused before the strides are computed.
  write_bytes(path, npy_with_shape("(0, 1099511627776, 1099511627776)"));
  CHECK(test::error_of([&] { io::load_npy(path); }).find("has more than 2^48 elements (zero dimensions counted as 1)") !=
        std::string::npos);
  write_bytes(path, npy_with_shape("(0, 3)"));
  CHECK(io::load_npy(path).shape() == Shape{0, 3});  // an ordinary empty array still loads
  std::remove(path.c_str());
}

TEST_CASE("hostile paths: a directory is not read as a file; temporaries of killed writers are cleaned up") {
  const std::string dir = test::temp_path("a_directory");
  std::filesystem::create_directories(dir);
  CHECK(test::error_of([&] { io::read_file(dir); }).find(dir + ": is a directory, not a file that can be read") != std::string::npos);
  CHECK(test::error_of([&] { io::load_safetensors(dir); }).find("is a directory") != std::string::npos);
  std::filesystem::remove_all(dir);
  // A writer killed mid-save leaves PATH.tmp.<pid>; the next write to PATH removes it when that
  // process is gone, and leaves the temporaries of live processes alone.
  const std::string path = test::temp_path("orphans.npy");
  const std::string orphan = path + ".tmp.999999999", live = path + ".tmp." + std::to_string(::getppid());
  write_bytes(orphan, "half a file");
  write_bytes(live, "another writer's file");
  io::save_npy(path, Tensor::ones({3}));
  CHECK_FALSE(std::filesystem::exists(orphan));
  CHECK(std::filesystem::exists(live));
  CHECK(io::load_npy(path).to_vector() == std::vector<float>{1, 1, 1});
  for (const std::string& p : {path, live}) std::remove(p.c_str());
}

TEST_CASE("atomic writes leave the old file intact when writing fails") {
  const std::string path = test::temp_path("atomic.npy");
  io::save_npy(path, Tensor::ones({2}));
  CHECK(test::error_of([&] { io::save_npy("/nonexistent_dir/x.npy", Tensor::ones({2})); }).find("cannot open") !=
        std::string::npos);
  CHECK(io::load_npy(path).to_vector() == std::vector<float>{1, 1});
  std::remove(path.c_str());
}

TEST_CASE("npy: the reference implementation's fixture tensors" * doctest::test_suite("requires_shared")) {
  const std::string shared = test::shared_dir();
  if (shared.empty()) {
    return test::skip("../shared is absent; the fixture npy files cannot be read");
  }
  const std::string dir = shared + "/fixtures/yolov7-tiny-coco128/";
  const Tensor input = io::load_npy(dir + "input_320.npy");
  CHECK(input.shape() == Shape{1, 3, 320, 320});
  CHECK(input.dtype() == DType::f32);
  const auto v = input.to_vector();
  CHECK(*std::min_element(v.begin(), v.end()) >= 0.0f);  // letterboxed RGB / 255
  CHECK(*std::max_element(v.begin(), v.end()) <= 1.0f);
  CHECK(input.at({0, 0, 0, 0}) == doctest::Approx(114.0 / 255.0));  // grey padding in the corner
  const Tensor decoded = io::load_npy(dir + "decoded_320.npy");
  CHECK(decoded.shape() == Shape{1, 6300, 85});
  const Tensor targets = io::load_npy(dir + "loss_targets.npy");
  CHECK(targets.dim() == 2);
  CHECK(targets.shape()[1] == 6);
}

TEST_CASE("protobuf writer: keys, varints, fixed32, length-delimited and packed fields as the wire format encodes them") {
  using io::protobuf::Message;
  auto bytes = [](const Message& m) { return std::vector<uint8_t>(m.bytes().begin(), m.bytes().end()); };
  // The encoding guide's examples: field 1 = 150 is 08 96 01; field 2 = "testing" is 12 07 74 65 73 74 69 6e 67.
  CHECK(bytes(Message().add_varint(1, 150)) == std::vector<uint8_t>{0x08, 0x96, 0x01});
  CHECK(bytes(Message().add_string(2, "testing")) == std::vector<uint8_t>{0x12, 0x07, 't', 'e', 's', 't', 'i', 'n', 'g'});
  // A nested message is a length-delimited field holding its bytes: field 3 = {1: 150} is 1a 03 08 96 01.
  CHECK(bytes(Message().add_message(3, Message().add_varint(1, 150))) == std::vector<uint8_t>{0x1a, 0x03, 0x08, 0x96, 0x01});
  // A negative int64 is its two's complement: ten bytes, the last 01.
  const std::vector<uint8_t> minus_one = bytes(Message().add_int(1, -1));
  CHECK(minus_one.size() == 11);
  CHECK(minus_one.front() == 0x08);
  CHECK(minus_one.back() == 0x01);
  // fixed32 (wire type 5), little-endian: field 2 = 1.0f is 15 00 00 80 3f.
  CHECK(bytes(Message().add_float(2, 1.0f)) == std::vector<uint8_t>{0x15, 0x00, 0x00, 0x80, 0x3f});
  // Field numbers above 15 take a two-byte key: field 20 (varint) is a0 01.
  CHECK(bytes(Message().add_varint(20, 3)) == std::vector<uint8_t>{0xa0, 0x01, 0x03});
  // Packed repeated varints: field 4 = [3, 270, 86942] is 22 06 03 8e 02 9e a7 05.
  CHECK(bytes(Message().add_packed_ints(4, {3, 270, 86942})) == std::vector<uint8_t>{0x22, 0x06, 0x03, 0x8e, 0x02, 0x9e, 0xa7, 0x05});
  CHECK(bytes(Message().add_packed_floats(5, {1.0f})) == std::vector<uint8_t>{0x2a, 0x04, 0x00, 0x00, 0x80, 0x3f});
}
