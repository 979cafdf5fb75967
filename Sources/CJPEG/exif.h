#ifndef FORKLIFT_CJPEG_EXIF_H
#define FORKLIFT_CJPEG_EXIF_H

#include <stddef.h>
#include <stdint.h>

/// The EXIF orientation (1...8) in the payload of an APP1 marker (the bytes after its length
/// field), or 1 when the payload is not EXIF, has no orientation tag, or is malformed.
int forklift_exif_orientation(const uint8_t *payload, size_t length);

#endif
