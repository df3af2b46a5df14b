// stb_image (the decoder), compiled from Debian's libstb-dev header into the pdyolo_image library
// (and, with sanitizers, into the image fuzz target) instead of linking libstb.so, with every
// allocation zeroed: stb's JPEG decoder reads fields of its freshly malloc'd state that it has not
// written on some corrupt progressive streams (tests/fuzz/FUZZING.md), so with plain malloc such a
// file decodes to pixels that depend on what the heap held before. Zeroed, it decodes the same way
// every time. No stb source is copied here: the implementation is the header's.
#include <cstdlib>
#define STBI_MALLOC(size) std::calloc(1, size)
#define STBI_REALLOC(pointer, size) std::realloc(pointer, size)
#define STBI_FREE(pointer) std::free(pointer)
#define STB_IMAGE_IMPLEMENTATION
#include <stb/stb_image.h>
