// .npy arrays (io::parse_npy): magic, version, header dictionary, shape, dtype, data size.
#include "fuzz_target.hpp"
#include "pdyolo/io/npy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    const pdyolo::Tensor t = pdyolo::io::parse_npy(bytes, "fuzz.npy");
    pdyolo::fuzz::require(t.numel() * static_cast<int64_t>(pdyolo::dtype_size(t.dtype())) <= static_cast<int64_t>(bytes.size()));
  });
}
