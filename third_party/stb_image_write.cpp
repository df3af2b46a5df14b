// stb_image_write (PNG and JPEG writing), compiled from Debian's libstb-dev header into the
// pdyolo_image library. No stb source is copied here: the implementation is the header's.
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb/stb_image_write.h>
