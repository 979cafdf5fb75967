#include "cjpeg.h"

#include <setjmp.h>
#include <stdio.h>  // jpeglib.h needs FILE and size_t declared first
#include <string.h>

#include <jerror.h>
#include <jpeglib.h>

#include "exif.h"

// ---- Errors: every libjpeg error, and every warning about damaged data, ends in a longjmp back
// to the public function that called setjmp. libjpeg reports a truncated file only as a warning
// (and fills the missing rows with grey), so warnings must fail the decode too.

typedef struct {
    struct jpeg_error_mgr base;
    jmp_buf jump;
    forklift_jpeg_status status;
    forklift_jpeg_info *info;
} shim_error;

static void fail_with_message(j_common_ptr cinfo, forklift_jpeg_status status) {
    shim_error *error = (shim_error *)cinfo->err;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    snprintf(error->info->message, sizeof error->info->message, "%s", text);
    error->status = status;
    longjmp(error->jump, 1);
}

static void on_error(j_common_ptr cinfo) {
    fail_with_message(cinfo, cinfo->err->msg_code == JERR_NO_SOI ? FORKLIFT_JPEG_NOT_JPEG : FORKLIFT_JPEG_CORRUPT);
}

/// Warnings that say nothing about the pixels.
static int is_harmless_warning(int code) { return code == JWRN_JFIF_MAJOR || code == JWRN_BOGUS_ICC; }

static void on_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;  // trace and informational messages
    shim_error *error = (shim_error *)cinfo->err;
    error->info->warnings += 1;
    int code = cinfo->err->msg_code;
    if (is_harmless_warning(code)) return;
    fail_with_message(cinfo, code == JWRN_JPEG_EOF ? FORKLIFT_JPEG_TRUNCATED : FORKLIFT_JPEG_CORRUPT);
}

static struct jpeg_error_mgr *install_errors(shim_error *error, forklift_jpeg_info *info) {
    jpeg_std_error(&error->base);
    error->base.error_exit = on_error;
    error->base.emit_message = on_message;
    error->status = FORKLIFT_JPEG_OK;
    error->info = info;
    return &error->base;
}

/// Checks what can be checked before libjpeg sees the data. Returns OK or the failure status.
static forklift_jpeg_status check_arguments(const uint8_t *data, size_t size, int scale_denom, forklift_jpeg_info *info) {
    memset(info, 0, sizeof *info);
    info->orientation = 1;
    if (scale_denom != 1 && scale_denom != 2 && scale_denom != 4 && scale_denom != 8) {
        snprintf(info->message, sizeof info->message, "DCT scale 1/%d is not one of 1, 1/2, 1/4, 1/8", scale_denom);
        return FORKLIFT_JPEG_BAD_ARGUMENT;
    }
    if (data == NULL || size < 2 || data[0] != 0xFF || data[1] != 0xD8) {
        if (size >= 2 && data != NULL) {
            snprintf(info->message, sizeof info->message, "not a JPEG file: starts with 0x%02x 0x%02x", data[0], data[1]);
        } else {
            snprintf(info->message, sizeof info->message, "not a JPEG file: %zu bytes", size);
        }
        return FORKLIFT_JPEG_NOT_JPEG;
    }
    return FORKLIFT_JPEG_OK;
}

static int orientation_from_markers(struct jpeg_decompress_struct *cinfo) {
    for (jpeg_saved_marker_ptr marker = cinfo->marker_list; marker != NULL; marker = marker->next) {
        if (marker->marker != JPEG_APP0 + 1) continue;
        int orientation = forklift_exif_orientation(marker->data, marker->data_length);
        if (orientation != 1) return orientation;
    }
    return 1;
}

static int swaps_axes(int orientation) { return orientation >= 5; }

/// Reads the header, sets the output color space and scale, and fills `info`. May longjmp.
static void read_header(struct jpeg_decompress_struct *cinfo, const uint8_t *data, size_t size, int scale_denom, forklift_jpeg_info *info) {
    jpeg_mem_src(cinfo, data, (unsigned long)size);
    jpeg_save_markers(cinfo, JPEG_APP0 + 1, 0xFFFF);
    jpeg_read_header(cinfo, TRUE);
    info->width = (int32_t)cinfo->image_width;
    info->height = (int32_t)cinfo->image_height;
    info->components = cinfo->num_components;
    info->progressive = cinfo->progressive_mode ? 1 : 0;
    info->orientation = orientation_from_markers(cinfo);
    // CMYK comes out as CMYK (libjpeg-turbo does not convert it to RGB); the shim converts it.
    int cmyk = cinfo->jpeg_color_space == JCS_CMYK || cinfo->jpeg_color_space == JCS_YCCK;
    cinfo->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    cinfo->scale_num = 1;
    cinfo->scale_denom = (unsigned int)scale_denom;
    jpeg_calc_output_dimensions(cinfo);
    int width = (int)cinfo->output_width, height = (int)cinfo->output_height;
    info->output_width = swaps_axes(info->orientation) ? height : width;
    info->output_height = swaps_axes(info->orientation) ? width : height;
}

// ---- Rows: a decoded row goes to its place in the output, converted from CMYK if need be and
// moved by the EXIF orientation. Each case says where stored pixel (x, y) of a W×H image lands.

typedef struct {
    ptrdiff_t start;  // offset of the row's first pixel, in pixels
    ptrdiff_t step;   // distance between consecutive pixels of the row, in pixels
} row_placement;

static row_placement place_row(int orientation, ptrdiff_t y, ptrdiff_t width, ptrdiff_t height) {
    switch (orientation) {
    case 2: return (row_placement){y * width + width - 1, -1};                  // mirror: (W-1-x, y)
    case 3: return (row_placement){(height - 1 - y) * width + width - 1, -1};   // 180°: (W-1-x, H-1-y)
    case 4: return (row_placement){(height - 1 - y) * width, 1};                // flip: (x, H-1-y)
    case 5: return (row_placement){y, height};                                  // transpose: (y, x)
    case 6: return (row_placement){height - 1 - y, height};                     // 90° CW: (H-1-y, x)
    case 7: return (row_placement){(width - 1) * height + height - 1 - y, -height};  // transverse: (H-1-y, W-1-x)
    case 8: return (row_placement){(width - 1) * height + y, -height};          // 90° CCW: (y, W-1-x)
    default: return (row_placement){y * width, 1};
    }
}

/// a*b/255 rounded, as Pillow computes it (so CMYK converts to the same RGB as Pillow's).
static inline unsigned muldiv255(unsigned a, unsigned b) {
    unsigned t = a * b + 128;
    return (t + (t >> 8)) >> 8;
}

static void put_row(const JSAMPLE *row, int cmyk, ptrdiff_t width, uint8_t *rgb, row_placement place) {
    uint8_t *out = rgb + place.start * 3;
    ptrdiff_t step = place.step * 3;
    if (!cmyk) {
        for (ptrdiff_t x = 0; x < width; x++, out += step) {
            out[0] = row[3 * x];
            out[1] = row[3 * x + 1];
            out[2] = row[3 * x + 2];
        }
        return;
    }
    // Adobe CMYK JPEGs (nearly all of them) store inverted inks, so a stored value is 255 - ink.
    for (ptrdiff_t x = 0; x < width; x++, out += step) {
        const JSAMPLE *p = row + 4 * x;
        unsigned not_black = p[3];
        for (int c = 0; c < 3; c++) out[c] = (uint8_t)(not_black - muldiv255(255u - p[c], not_black));
    }
}

static void decode_rows(struct jpeg_decompress_struct *cinfo, uint8_t *rgb, int orientation) {
    ptrdiff_t width = cinfo->output_width, height = cinfo->output_height;
    int cmyk = cinfo->out_color_space == JCS_CMYK;
    if (!cmyk && orientation == 1) {
        while (cinfo->output_scanline < cinfo->output_height) {
            JSAMPROW row = rgb + (size_t)cinfo->output_scanline * (size_t)width * 3;
            jpeg_read_scanlines(cinfo, &row, 1);
        }
        return;
    }
    // One row at a time through a buffer from libjpeg's pool (freed with the decompressor).
    JSAMPARRAY buffer = (*cinfo->mem->alloc_sarray)((j_common_ptr)cinfo, JPOOL_IMAGE, (JDIMENSION)(width * cinfo->output_components), 1);
    while (cinfo->output_scanline < cinfo->output_height) {
        ptrdiff_t y = cinfo->output_scanline;
        if (jpeg_read_scanlines(cinfo, buffer, 1) != 1) break;
        put_row(buffer[0], cmyk, width, rgb, place_row(orientation, y, width, height));
    }
}

/// Header only when `rgb` is NULL, else the whole decode. setjmp lives here, so every longjmp from
/// libjpeg's callbacks lands in this frame and never crosses into Swift.
static forklift_jpeg_status run(
    const uint8_t *data, size_t size, int scale_denom, uint8_t *rgb, size_t capacity, forklift_jpeg_info *info) {
    forklift_jpeg_status checked = check_arguments(data, size, scale_denom, info);
    if (checked != FORKLIFT_JPEG_OK) return checked;
    struct jpeg_decompress_struct cinfo;
    shim_error error;
    cinfo.err = install_errors(&error, info);
    if (setjmp(error.jump)) {
        jpeg_destroy_decompress(&cinfo);
        return error.status;
    }
    jpeg_create_decompress(&cinfo);
    read_header(&cinfo, data, size, scale_denom, info);
    if (rgb == NULL) {
        jpeg_destroy_decompress(&cinfo);
        return FORKLIFT_JPEG_OK;
    }
    size_t needed = (size_t)info->output_width * (size_t)info->output_height * 3;
    if (capacity < needed) {
        snprintf(info->message, sizeof info->message, "output buffer holds %zu bytes, the image needs %zu", capacity, needed);
        jpeg_destroy_decompress(&cinfo);
        return FORKLIFT_JPEG_BAD_ARGUMENT;
    }
    jpeg_start_decompress(&cinfo);
    decode_rows(&cinfo, rgb, info->orientation);
    if (cinfo.output_scanline < cinfo.output_height) {
        snprintf(info->message, sizeof info->message, "libjpeg stopped after %u of %u rows", cinfo.output_scanline, cinfo.output_height);
        jpeg_destroy_decompress(&cinfo);
        return FORKLIFT_JPEG_CORRUPT;
    }
    jpeg_finish_decompress(&cinfo);
    jpeg_destroy_decompress(&cinfo);
    return FORKLIFT_JPEG_OK;
}

forklift_jpeg_status forklift_jpeg_read_header(const uint8_t *data, size_t size, int scale_denom, forklift_jpeg_info *info) {
    return run(data, size, scale_denom, NULL, 0, info);
}

forklift_jpeg_status forklift_jpeg_decode(
    const uint8_t *data, size_t size, int scale_denom, uint8_t *rgb, size_t capacity, forklift_jpeg_info *info) {
    if (rgb == NULL) {
        check_arguments(data, size, scale_denom, info);
        snprintf(info->message, sizeof info->message, "no output buffer");
        return FORKLIFT_JPEG_BAD_ARGUMENT;
    }
    return run(data, size, scale_denom, rgb, capacity, info);
}
