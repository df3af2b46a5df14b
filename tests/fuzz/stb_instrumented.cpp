// stb_image and stb_image_write built from Debian's libstb-dev headers into the image fuzz target
// (instead of linking libstb.so), so that AddressSanitizer and libFuzzer's coverage reach the decoder.
// stb's allocations are zeroed here: its JPEG decoder reads fields of its freshly malloc'd state
// that it has not written on some corrupt progressive streams (tests/fuzz/FUZZING.md), which made
// findings depend on what the heap held before — with zeroed memory a run is reproducible.
#include <cstdlib>
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(pointer, size) std::realloc(pointer, size)
#define STBI_FREE(pointer) std::free(pointer)
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
