#ifndef FORKLIFT_CJPEG_H
#define FORKLIFT_CJPEG_H

// A small shim over libjpeg-turbo: JPEG bytes to RGB8, with errors returned instead of exit().
// libjpeg's default error handler calls exit(), and its recovery needs setjmp/longjmp. Both stay
// inside this C file, so a longjmp never crosses a Swift frame.

#include <stddef.h>
#include <stdint.h>

/// What a call returns. Anything but FORKLIFT_JPEG_OK leaves a message in the info struct.
typedef enum {
    FORKLIFT_JPEG_OK = 0,
    /// The data does not start with the JPEG SOI marker (0xFF 0xD8).
    FORKLIFT_JPEG_NOT_JPEG = 1,
    /// libjpeg reached the end of the data before the image was complete.
    FORKLIFT_JPEG_TRUNCATED = 2,
    /// libjpeg reported an error or a warning about damaged data.
    FORKLIFT_JPEG_CORRUPT = 3,
    /// The caller asked for something the shim cannot do (bad scale, buffer too small).
    FORKLIFT_JPEG_BAD_ARGUMENT = 4,
} forklift_jpeg_status;

enum { FORKLIFT_JPEG_MESSAGE_LENGTH = 200 };

/// What the header says, and what a decode at a given DCT scale writes.
typedef struct {
    /// Size as stored in the file, before scaling and orientation.
    int32_t width;
    int32_t height;
    /// 1 gray, 3 YCbCr/RGB, 4 CMYK/YCCK.
    int32_t components;
    /// EXIF orientation 1...8 (1 when absent or unreadable).
    int32_t orientation;
    int32_t progressive;
    /// Size of the RGB8 image a decode at the requested scale writes, orientation applied.
    int32_t output_width;
    int32_t output_height;
    /// libjpeg's warnings seen (any of them makes the decode fail).
    int32_t warnings;
    /// libjpeg's message for a failure, NUL-terminated.
    char message[FORKLIFT_JPEG_MESSAGE_LENGTH];
} forklift_jpeg_info;

/// Reads the header only (no pixel buffers are allocated). `scale_denom` (1, 2, 4 or 8) sets the
/// DCT scale whose output size is reported in `output_width`/`output_height`.
forklift_jpeg_status forklift_jpeg_read_header(const uint8_t *data, size_t size, int scale_denom, forklift_jpeg_info *info);

/// Decodes to packed RGB8 rows (output_width × output_height × 3 bytes) in `rgb`, a buffer of
/// `capacity` bytes the caller owns, decoding at 1/scale_denom size with libjpeg's DCT scaling.
/// Grayscale and CMYK are converted; the EXIF orientation is applied.
forklift_jpeg_status forklift_jpeg_decode(
    const uint8_t *data, size_t size, int scale_denom, uint8_t *rgb, size_t capacity, forklift_jpeg_info *info);

#endif
