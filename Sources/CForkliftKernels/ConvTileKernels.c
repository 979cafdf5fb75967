// The AVX-512 microkernel of the packed-filter convolution (ConvFilters.swift, ConvTile.swift):
// 6 output channels × up to 64 output positions. Thirty-two registers hold 24 accumulators,
// four rows of B and nothing else: each panel weight is a broadcast memory operand of its
// multiply-adds. Per k that is 4 loads of B and 6 broadcasts for 24 multiply-adds, against 8
// loads for 12 in the 6×16 AVX2 tile, and the epilogue is a max and a min per vector. B is
// either packed tiles or, for columns inside one image, the input rows where they lie.
#include "CForkliftKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define TILE_TARGET __attribute__((target("avx512f,fma")))
#define TILE_UNROLL _Pragma("clang loop unroll(full)")

// max(low, v) then min(high, ·): a NaN in v is the second operand of both and passes through.
static inline __attribute__((always_inline)) TILE_TARGET __m512 tile_clamp(__m512 v, __m512 low, __m512 high) {
    return _mm512_min_ps(high, _mm512_max_ps(low, v));
}

static inline __attribute__((always_inline)) TILE_TARGET void tile6(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, ptrdiff_t tileStride, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds, int accumulate, const int V) {
    __m512 acc[6][4];
    TILE_UNROLL for (int r = 0; r < 6; r++) {
        TILE_UNROLL for (int v = 0; v < V; v++) {
            acc[r][v] = accumulate ? _mm512_loadu_ps(y + r * ldy + 16 * v) : _mm512_set1_ps(bias[r]);
        }
    }
    for (ptrdiff_t i = 0; i < k; i++) {
        __m512 row[4];
        TILE_UNROLL for (int v = 0; v < V; v++) row[v] = _mm512_loadu_ps(b + v * tileStride + bStride * i);
        TILE_UNROLL for (int r = 0; r < 6; r++) {
            const __m512 w = _mm512_set1_ps(panel[6 * i + r]);
            TILE_UNROLL for (int v = 0; v < V; v++) acc[r][v] = _mm512_fmadd_ps(w, row[v], acc[r][v]);
        }
    }
    const __m512 low = _mm512_set1_ps(bounds[0]), high = _mm512_set1_ps(bounds[1]);
    TILE_UNROLL for (int r = 0; r < 6; r++) {
        TILE_UNROLL for (int v = 0; v < V; v++) {
            _mm512_storeu_ps(y + r * ldy + 16 * v, tile_clamp(acc[r][v], low, high));
        }
    }
}

TILE_TARGET void forklift_conv_tile6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, ptrdiff_t tileStride, int tiles, float *y,
    ptrdiff_t ldy, const float *bias, const float *bounds, int accumulate) {
    // A literal count of tiles lets the compiler keep every accumulator in a register.
    switch (tiles) {
    case 1: tile6(panel, b, k, bStride, tileStride, y, ldy, bias, bounds, accumulate, 1); break;
    case 2: tile6(panel, b, k, bStride, tileStride, y, ldy, bias, bounds, accumulate, 2); break;
    case 3: tile6(panel, b, k, bStride, tileStride, y, ldy, bias, bounds, accumulate, 3); break;
    default: tile6(panel, b, k, bStride, tileStride, y, ldy, bias, bounds, accumulate, 4); break;
    }
}

// Columns that fill fewer than a tile (the last of a 7×7 or 14×14 image at batch 1) as one
// product per column along the panel: a vector holds the 6 rows of one k, so the multiply-adds
// scale with the columns there are instead of 16. U chains per column hide the FMA latency.
// Six floats without reading past them (the last panel ends there): a masked 512-bit load,
// since AVX-512F alone has no masked 256-bit one.
static inline __attribute__((always_inline)) TILE_TARGET __m256 six_floats(__mmask16 six, const float *p) {
    return _mm512_castps512_ps256(_mm512_maskz_loadu_ps(six, p));
}

static inline __attribute__((always_inline)) TILE_TARGET void narrow6(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, int rows, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds, const int C, const int U) {
    const __mmask16 six = 0x3F;
    __m256 acc[8][4];
    TILE_UNROLL for (int c = 0; c < C; c++) {
        TILE_UNROLL for (int u = 0; u < U; u++) acc[c][u] = u == 0 ? six_floats(six, bias) : _mm256_setzero_ps();
    }
    ptrdiff_t i = 0;
    for (; i + U <= k; i += U) {
        TILE_UNROLL for (int u = 0; u < U; u++) {
            const __m256 w = six_floats(six, panel + 6 * (i + u));
            TILE_UNROLL for (int c = 0; c < C; c++) {
                acc[c][u] = _mm256_fmadd_ps(w, _mm256_set1_ps(b[bStride * (i + u) + c]), acc[c][u]);
            }
        }
    }
    for (; i < k; i++) {
        const __m256 w = six_floats(six, panel + 6 * i);
        TILE_UNROLL for (int c = 0; c < C; c++) acc[c][0] = _mm256_fmadd_ps(w, _mm256_set1_ps(b[bStride * i + c]), acc[c][0]);
    }
    const __m256 low = _mm256_set1_ps(bounds[0]), high = _mm256_set1_ps(bounds[1]);
    TILE_UNROLL for (int c = 0; c < C; c++) {
        __m256 sum = acc[c][0];
        TILE_UNROLL for (int u = 1; u < U; u++) sum = _mm256_add_ps(sum, acc[c][u]);
        float column[8];
        _mm256_storeu_ps(column, _mm256_min_ps(high, _mm256_max_ps(low, sum)));
        for (int r = 0; r < rows; r++) y[r * ldy + c] = column[r];
    }
}

TILE_TARGET void forklift_conv_narrow6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, int columns, int rows, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds) {
    switch (columns) {
    case 1: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 1, 4); break;
    case 2: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 2, 4); break;
    case 3: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 3, 2); break;
    case 4: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 4, 2); break;
    case 5: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 5, 1); break;
    case 6: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 6, 1); break;
    case 7: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 7, 1); break;
    default: narrow6(panel, b, k, bStride, rows, y, ldy, bias, bounds, 8, 1); break;
    }
}

#else

void forklift_conv_tile6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, ptrdiff_t tileStride, int tiles, float *y,
    ptrdiff_t ldy, const float *bias, const float *bounds, int accumulate) {
    (void)panel, (void)b, (void)k, (void)bStride, (void)tileStride, (void)tiles, (void)y, (void)ldy, (void)bias, (void)bounds,
        (void)accumulate;
    __builtin_trap();
}

void forklift_conv_narrow6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, int columns, int rows, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds) {
    (void)panel, (void)b, (void)k, (void)bStride, (void)columns, (void)rows, (void)y, (void)ldy, (void)bias, (void)bounds;
    __builtin_trap();
}

#endif
