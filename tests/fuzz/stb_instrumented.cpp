// stb_image and stb_image_write built from Debian's libstb-dev headers into the image fuzz target
// (instead of linking libstb.so), so that AddressSanitizer and libFuzzer's coverage reach the decoder.
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
