// Winograd F(2×2, 3×3) convolution over float32 NCHW, AVX-512 only (see CForkliftKernels.h).
//
// A 3×3 stride-1 convolution computes each 2×2 block of output ("tile") from a 4×4 patch of
// input. In the transformed domain the patch V = Bᵀ d B and the filter U = G g Gᵀ meet in 16
// element-wise products, summed over input channels: 16 matrix products of [M × C]·[C × tiles],
// 2.25× fewer multiply-adds than the direct convolution. The output is Y = Aᵀ m A.
//
// Tiles are numbered image by image, then by tile row, then by tile column. A block of tiles is
// laid out in panels of 16 tiles: V[ξ][panel][c][16] and m[ξ][row][tile]. The transforms work
// on up to 16 horizontally adjacent tiles at once, one per vector lane, with masked loads and
// stores standing in for the padding and for the edges of the image, the block and the panel.
#include "CForkliftKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>

#define FORKLIFT_AVX512 __attribute__((target("avx512f,fma")))

static inline ptrdiff_t min3(ptrdiff_t a, ptrdiff_t b, ptrdiff_t c) {
    ptrdiff_t m = a < b ? a : b;
    return m < c ? m : c;
}

// Lanes l in 0..<16 with lo ≤ l < hi.
static inline __mmask16 lane_range(ptrdiff_t lo, ptrdiff_t hi) {
    if (lo < 0) lo = 0;
    if (hi > 16) hi = 16;
    if (lo >= hi) return 0;
    return (__mmask16)(((1u << hi) - 1u) & ~((1u << lo) - 1u));
}

// An address that may lie before or after the tensor: only lanes inside it are ever touched
// (masked loads and stores do not fault on the others), so compute it as an integer.
static inline const float *shifted(const float *base, ptrdiff_t offset) {
    return (const float *)((uintptr_t)base + (uintptr_t)(offset * (ptrdiff_t)sizeof(float)));
}

// The tiles of a block that share one tile row and one panel: tiles t ..< t + count are lanes
// lane ..< lane + count of panel `panel`, and lane 0 stands for tile column `column0` (which
// may be negative or past the row: those lanes are masked).
struct segment {
    ptrdiff_t image, tileRow, column0, panel, lane, count;
};

static inline struct segment segment_at(
    ptrdiff_t t, ptrdiff_t t0, ptrdiff_t end, ptrdiff_t tileRows, ptrdiff_t tileCols) {
    struct segment s;
    const ptrdiff_t perImage = tileRows * tileCols;
    s.image = t / perImage;
    const ptrdiff_t rest = t % perImage;
    s.tileRow = rest / tileCols;
    const ptrdiff_t column = rest % tileCols;
    const ptrdiff_t local = t - t0;
    s.panel = local / 16;
    s.lane = local % 16;
    s.count = min3(16 - s.lane, tileCols - column, end - t);
    s.column0 = column - s.lane;
    return s;
}

FORKLIFT_AVX512 void forklift_winograd_input_avx512(
    const float *x, ptrdiff_t channels, ptrdiff_t height, ptrdiff_t width, ptrdiff_t padTop, ptrdiff_t padLeft,
    ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count, float *v) {
    const __m512i even = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
    const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
    const ptrdiff_t panels = (count + 15) / 16;
    const ptrdiff_t xiStride = panels * channels * 16;
    const ptrdiff_t plane = height * width;
    const ptrdiff_t end = t0 + count;
    for (ptrdiff_t t = t0; t < end;) {
        const struct segment s = segment_at(t, t0, end, tileRows, tileCols);
        const __mmask16 store = (__mmask16)(((1u << s.count) - 1u) << s.lane);
        // Lane l's patch starts at input column c0 + 2l; columns outside the row read as zero.
        const ptrdiff_t c0 = 2 * s.column0 - padLeft;
        const __mmask16 m0 = lane_range(-c0, width - c0), m1 = lane_range(-c0 - 16, width - c0 - 16);
        const __mmask16 m2 = lane_range(-c0 - 2, width - c0 - 2), m3 = lane_range(-c0 - 18, width - c0 - 18);
        const ptrdiff_t row0 = 2 * s.tileRow - padTop;
        const float *image = x + s.image * channels * plane;
        float *out = v + s.panel * channels * 16;
        for (ptrdiff_t c = 0; c < channels; c++) {
            const float *p = image + c * plane;
            __m512 r[4][4];
            for (int i = 0; i < 4; i++) {
                const ptrdiff_t row = row0 + i;
                __m512 d0 = _mm512_setzero_ps(), d1 = d0, d2 = d0, d3 = d0;
                if (row >= 0 && row < height) {
                    const float *q = shifted(p, row * width + c0);
                    const __m512 a = _mm512_maskz_loadu_ps(m0, q), b = _mm512_maskz_loadu_ps(m1, shifted(q, 16));
                    const __m512 a2 = _mm512_maskz_loadu_ps(m2, shifted(q, 2)), b2 = _mm512_maskz_loadu_ps(m3, shifted(q, 18));
                    d0 = _mm512_permutex2var_ps(a, even, b);
                    d1 = _mm512_permutex2var_ps(a, odd, b);
                    d2 = _mm512_permutex2var_ps(a2, even, b2);
                    d3 = _mm512_permutex2var_ps(a2, odd, b2);
                }
                // d·B, row by row.
                r[i][0] = _mm512_sub_ps(d0, d2);
                r[i][1] = _mm512_add_ps(d1, d2);
                r[i][2] = _mm512_sub_ps(d2, d1);
                r[i][3] = _mm512_sub_ps(d1, d3);
            }
            // Bᵀ·(d·B), column by column; ξ = 4i + j.
            float *o = out + c * 16;
            for (int j = 0; j < 4; j++) {
                _mm512_mask_storeu_ps(o + (0 + j) * xiStride, store, _mm512_sub_ps(r[0][j], r[2][j]));
                _mm512_mask_storeu_ps(o + (4 + j) * xiStride, store, _mm512_add_ps(r[1][j], r[2][j]));
                _mm512_mask_storeu_ps(o + (8 + j) * xiStride, store, _mm512_sub_ps(r[2][j], r[1][j]));
                _mm512_mask_storeu_ps(o + (12 + j) * xiStride, store, _mm512_sub_ps(r[1][j], r[3][j]));
            }
        }
        t += s.count;
    }
}

// Eight rows of m (one filter panel) × `nv` panels of tiles, over all k: 8·nv accumulators,
// each broadcast filter value feeding nv multiply-adds. The filter panel (k·32 bytes) stays
// in L1 while the tile panels stream from L2.
static inline __attribute__((always_inline, target("avx512f,fma"))) void winograd_tile(
    const float *u, const float *v, ptrdiff_t panelStride, ptrdiff_t k, float *m, ptrdiff_t ldm, const int nv) {
    __m512 acc[8][3];
    for (int r = 0; r < 8; r++)
        for (int q = 0; q < 3; q++) acc[r][q] = _mm512_setzero_ps();
    const float *v0 = v, *v1 = v + panelStride, *v2 = v + 2 * panelStride;
    for (ptrdiff_t i = 0; i < k; i++) {
        const __m512 b0 = _mm512_loadu_ps(v0 + i * 16);
        const __m512 b1 = nv > 1 ? _mm512_loadu_ps(v1 + i * 16) : b0;
        const __m512 b2 = nv > 2 ? _mm512_loadu_ps(v2 + i * 16) : b0;
        const float *w = u + i * 8;
        for (int r = 0; r < 8; r++) {
            const __m512 a = _mm512_set1_ps(w[r]);
            acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
            if (nv > 1) acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
            if (nv > 2) acc[r][2] = _mm512_fmadd_ps(a, b2, acc[r][2]);
        }
    }
    for (int r = 0; r < 8; r++)
        for (int q = 0; q < nv; q++) _mm512_storeu_ps(m + r * ldm + q * 16, acc[r][q]);
}

FORKLIFT_AVX512 void forklift_winograd_multiply_avx512(
    const float *u, const float *v, ptrdiff_t rows, ptrdiff_t rowBegin, ptrdiff_t rowEnd, ptrdiff_t k, ptrdiff_t panels,
    float *m) {
    const ptrdiff_t ldm = panels * 16;
    const ptrdiff_t panelStride = k * 16;
    for (int xi = 0; xi < 16; xi++) {
        const float *uxi = u + xi * rows * k;
        const float *vxi = v + xi * panels * panelStride;
        float *mxi = m + xi * rows * ldm;
        for (ptrdiff_t r0 = rowBegin; r0 < rowEnd; r0 += 8) {
            const float *panel = uxi + r0 * k;
            float *out = mxi + r0 * ldm;
            ptrdiff_t p = 0;
            for (; p + 3 <= panels; p += 3) winograd_tile(panel, vxi + p * panelStride, panelStride, k, out + p * 16, ldm, 3);
            if (panels - p == 2) winograd_tile(panel, vxi + p * panelStride, panelStride, k, out + p * 16, ldm, 2);
            if (panels - p == 1) winograd_tile(panel, vxi + p * panelStride, panelStride, k, out + p * 16, ldm, 1);
        }
    }
}

FORKLIFT_AVX512 void forklift_winograd_output_avx512(
    const float *m, ptrdiff_t rows, ptrdiff_t channels, const float *bias, float low, float high, float *y,
    ptrdiff_t outHeight, ptrdiff_t outWidth, ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count) {
    // Interleave the two output columns of each tile: lanes 0..7 and 8..15 of a row's tiles.
    const __m512i front = _mm512_set_epi32(23, 7, 22, 6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
    const __m512i back = _mm512_set_epi32(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8);
    const __m512 lo = _mm512_set1_ps(low), hi = _mm512_set1_ps(high);
    const ptrdiff_t panels = (count + 15) / 16;
    const ptrdiff_t ldm = panels * 16;
    const ptrdiff_t xiStride = rows * ldm;
    const ptrdiff_t plane = outHeight * outWidth;
    const ptrdiff_t end = t0 + count;
    for (ptrdiff_t t = t0; t < end;) {
        const struct segment s = segment_at(t, t0, end, tileRows, tileCols);
        // Output column 2·column0 + e holds lane e/2's tile; keep this segment's tiles inside the row.
        const ptrdiff_t col0 = 2 * s.column0;
        const ptrdiff_t first = 2 * s.lane;
        const ptrdiff_t last = 2 * (s.lane + s.count) < outWidth - col0 ? 2 * (s.lane + s.count) : outWidth - col0;
        const __mmask16 maskFront = lane_range(first, last), maskBack = lane_range(first - 16, last - 16);
        const ptrdiff_t row = 2 * s.tileRow;
        const int second = row + 1 < outHeight;
        float *image = y + s.image * channels * plane;
        const float *in = m + s.panel * 16;
        for (ptrdiff_t c = 0; c < channels; c++) {
            const float *q = in + c * ldm;
            __m512 s0[4], s1[4];
            for (int j = 0; j < 4; j++) {
                const __m512 m0 = _mm512_loadu_ps(q + (0 + j) * xiStride), m1 = _mm512_loadu_ps(q + (4 + j) * xiStride);
                const __m512 m2 = _mm512_loadu_ps(q + (8 + j) * xiStride), m3 = _mm512_loadu_ps(q + (12 + j) * xiStride);
                s0[j] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
                s1[j] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
            }
            const __m512 b = _mm512_set1_ps(bias ? bias[c] : 0.0f);
            __m512 y00 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s0[0], s0[1]), s0[2]), b);
            __m512 y01 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s0[1], s0[2]), s0[3]), b);
            __m512 y10 = _mm512_add_ps(_mm512_add_ps(_mm512_add_ps(s1[0], s1[1]), s1[2]), b);
            __m512 y11 = _mm512_add_ps(_mm512_sub_ps(_mm512_sub_ps(s1[1], s1[2]), s1[3]), b);
            y00 = _mm512_min_ps(_mm512_max_ps(y00, lo), hi);
            y01 = _mm512_min_ps(_mm512_max_ps(y01, lo), hi);
            y10 = _mm512_min_ps(_mm512_max_ps(y10, lo), hi);
            y11 = _mm512_min_ps(_mm512_max_ps(y11, lo), hi);
            float *out = (float *)shifted(image + c * plane, row * outWidth + col0);
            _mm512_mask_storeu_ps(out, maskFront, _mm512_permutex2var_ps(y00, front, y01));
            _mm512_mask_storeu_ps((float *)shifted(out, 16), maskBack, _mm512_permutex2var_ps(y00, back, y01));
            if (second) {
                float *below = (float *)shifted(out, outWidth);
                _mm512_mask_storeu_ps(below, maskFront, _mm512_permutex2var_ps(y10, front, y11));
                _mm512_mask_storeu_ps((float *)shifted(below, 16), maskBack, _mm512_permutex2var_ps(y10, back, y11));
            }
        }
        t += s.count;
    }
}

#else

void forklift_winograd_input_avx512(
    const float *x, ptrdiff_t channels, ptrdiff_t height, ptrdiff_t width, ptrdiff_t padTop, ptrdiff_t padLeft,
    ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count, float *v) {
    (void)x, (void)channels, (void)height, (void)width, (void)padTop, (void)padLeft, (void)tileRows, (void)tileCols;
    (void)t0, (void)count, (void)v;
    __builtin_trap();
}

void forklift_winograd_multiply_avx512(
    const float *u, const float *v, ptrdiff_t rows, ptrdiff_t rowBegin, ptrdiff_t rowEnd, ptrdiff_t k, ptrdiff_t panels,
    float *m) {
    (void)u, (void)v, (void)rows, (void)rowBegin, (void)rowEnd, (void)k, (void)panels, (void)m;
    __builtin_trap();
}

void forklift_winograd_output_avx512(
    const float *m, ptrdiff_t rows, ptrdiff_t channels, const float *bias, float low, float high, float *y,
    ptrdiff_t outHeight, ptrdiff_t outWidth, ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count) {
    (void)m, (void)rows, (void)channels, (void)bias, (void)low, (void)high, (void)y, (void)outHeight, (void)outWidth;
    (void)tileRows, (void)tileCols, (void)t0, (void)count;
    __builtin_trap();
}

#endif
