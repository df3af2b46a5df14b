// PyTorch checkpoints, as `--weights x.pt` loads them (models::parse_model): the ZIP archive
// (ZIP64, CRC-32), the pickle program, tensor storages and strides, the embedded config through the
// model builder, and the state dict into the built graph.
#include "fuzz_target.hpp"
#include "pdyolo/models/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    pdyolo::models::LoadOptions options;
    options.max_parameters = int64_t{1} << 16;  // keeps each run fast
    pdyolo::models::parse_model(bytes, "fuzz.pt", options);
  });
}
