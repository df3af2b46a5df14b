// pdyolo's version (the CLI's `version`, the producer of exported files).
#pragma once

#define PDYOLO_VERSION "0.1.0"
