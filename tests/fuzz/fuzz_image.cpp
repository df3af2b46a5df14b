// Image decoding (data::decode_image: the size check, then stb_image — compiled into this target
// from Debian's header, third_party/stb_image_zeroed.cpp, so the sanitizers and coverage see inside it).
#include "fuzz_target.hpp"
#include "pdyolo/data/image_io.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  return pdyolo::fuzz::run(data, size, [](const std::vector<char>& bytes) {
    const pdyolo::data::Image img = pdyolo::data::decode_image(bytes, "fuzz.img");
    pdyolo::fuzz::require(img.width >= 1 && img.height >= 1 && img.width * img.height <= pdyolo::data::kMaxImagePixels);
  });
}
