// JSON (io::parse_json: safetensors headers, graph metadata). Whatever parses must write back with
// io::to_json and parse again to the same document.
#include "fuzz_target.hpp"
#include "pdyolo/io/json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    const std::string text(bytes.begin(), bytes.end());
    const std::string written = pdyolo::io::to_json(pdyolo::io::parse_json(text, "fuzz.json"));
    pdyolo::fuzz::require(pdyolo::io::to_json(pdyolo::io::parse_json(written, "fuzz.json (written back)")) == written);
  });
}
