// Model files in safetensors form, as `--weights` loads them (models::parse_model): the header
// (JSON), tensor offsets and shapes, the graph in the metadata (graph_from_value, validate) or the
// config it names (parser and builder), then the channel groups pruning would cut.
#include "fuzz_target.hpp"
#include "pdyolo/graph/channels.hpp"
#include "pdyolo/models/weights.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    pdyolo::models::LoadOptions options;
    options.max_parameters = int64_t{1} << 16;  // keeps each run fast; larger models are refused cleanly
    const pdyolo::models::YoloModel model = pdyolo::models::parse_model(bytes, "fuzz.safetensors", options);
    pdyolo::graph::channel_groups(model.graph);
  });
}
