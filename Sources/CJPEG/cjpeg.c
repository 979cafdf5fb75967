#include "cjpeg.h"
#include <stdio.h>
#include <jpeglib.h>
int forklift_jpeg_placeholder(void) { return JPEG_LIB_VERSION; }
