#include "exif.h"

#include <string.h>

// An APP1 Exif payload is "Exif\0\0" followed by a TIFF file: a byte-order mark ("II" little
// endian, "MM" big endian), the number 42, and the offset of IFD0, a list of 12-byte entries
// (tag, type, count, value). Orientation is tag 0x0112, type SHORT, stored inside the entry.
// Every offset comes from the file, so every read is bounds-checked against the payload.

typedef struct {
    const uint8_t *bytes;
    size_t length;
    int little_endian;
} tiff_reader;

static int read16(const tiff_reader *tiff, size_t offset, unsigned *value) {
    if (offset > tiff->length || tiff->length - offset < 2) return 0;
    const uint8_t *p = tiff->bytes + offset;
    *value = tiff->little_endian ? (unsigned)(p[0] | p[1] << 8) : (unsigned)(p[0] << 8 | p[1]);
    return 1;
}

static int read32(const tiff_reader *tiff, size_t offset, uint32_t *value) {
    if (offset > tiff->length || tiff->length - offset < 4) return 0;
    const uint8_t *p = tiff->bytes + offset;
    *value = tiff->little_endian ? ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24)
                                 : ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3]);
    return 1;
}

int forklift_exif_orientation(const uint8_t *payload, size_t length) {
    static const uint8_t exif_id[6] = {'E', 'x', 'i', 'f', 0, 0};
    if (payload == NULL || length < sizeof exif_id + 8 || memcmp(payload, exif_id, sizeof exif_id) != 0) return 1;
    tiff_reader tiff = {payload + sizeof exif_id, length - sizeof exif_id, 0};
    if (tiff.bytes[0] == 'I' && tiff.bytes[1] == 'I') {
        tiff.little_endian = 1;
    } else if (!(tiff.bytes[0] == 'M' && tiff.bytes[1] == 'M')) {
        return 1;
    }
    unsigned magic = 0, entries = 0;
    uint32_t ifd = 0;
    if (!read16(&tiff, 2, &magic) || magic != 42 || !read32(&tiff, 4, &ifd) || !read16(&tiff, ifd, &entries)) return 1;
    for (unsigned index = 0; index < entries; index++) {
        size_t entry = (size_t)ifd + 2 + 12 * (size_t)index;
        unsigned tag = 0, type = 0, value = 0;
        uint32_t count = 0;
        if (!read16(&tiff, entry, &tag)) return 1;
        if (tag != 0x0112) continue;
        if (!read16(&tiff, entry + 2, &type) || !read32(&tiff, entry + 4, &count) || !read16(&tiff, entry + 8, &value)) return 1;
        // The standard says SHORT (3); anything else is malformed and treated as "no rotation".
        if (type != 3 || count < 1 || value < 1 || value > 8) return 1;
        return (int)value;
    }
    return 1;
}
