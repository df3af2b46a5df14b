// VOC annotations (data::parse_voc_annotation over data::parse_xml): problems must land in the
// dataset's list, never escape; every box kept must lie inside the image it claims.
#include "fuzz_target.hpp"
#include "pdyolo/data/dataset.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    pdyolo::data::Dataset ds;
    const auto sample = pdyolo::data::detail::parse_voc_annotation(std::string(bytes.begin(), bytes.end()), "fuzz.xml", "fuzz.jpg",
                                                                   pdyolo::data::voc_class_names(), true, ds);
    if (!sample) return;
    for (const pdyolo::data::Box& b : sample->boxes)
      pdyolo::fuzz::require(b.x1 >= 0 && b.y1 >= 0 && b.x2 <= sample->width && b.y2 <= sample->height && b.cls >= 0 && b.cls < 20);
  });
}
