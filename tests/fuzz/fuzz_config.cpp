// Model configs (YAML) through to the built and validated graph: io::parse_yaml, parse_model_config,
// build_yolo.
#include "fuzz_target.hpp"
#include "pdyolo/models/yolo.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    const std::string text(bytes.begin(), bytes.end());
    const pdyolo::models::ModelConfig cfg =
        pdyolo::models::parse_model_config(pdyolo::io::parse_yaml(text, "fuzz.yaml"), "fuzz.yaml");
    pdyolo::models::BuildOptions options;
    options.max_parameters = int64_t{1} << 16;  // keeps each run fast
    pdyolo::models::build_yolo(cfg, options);
  });
}
