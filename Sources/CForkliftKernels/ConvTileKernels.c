// The AVX-512 microkernel of the packed-filter convolution (ConvFilters.swift, ConvTile.swift):
// 6 output channels × up to 64 output positions. Thirty-two registers hold 24 accumulators,
// four rows of B and nothing else: each panel weight is a broadcast memory operand of its
// multiply-adds. Per k that is 4 loads of B and 6 broadcasts for 24 multiply-adds, against 8
// loads for 12 in the 6×16 AVX2 tile, and the epilogue is a max and a min per vector.
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
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t tileStride, float *y, ptrdiff_t ldy, const float *bias,
    const float *bounds, int accumulate, const int V) {
    __m512 acc[6][4];
    TILE_UNROLL for (int r = 0; r < 6; r++) {
        TILE_UNROLL for (int v = 0; v < V; v++) {
            acc[r][v] = accumulate ? _mm512_loadu_ps(y + r * ldy + 16 * v) : _mm512_set1_ps(bias[r]);
        }
    }
    for (ptrdiff_t i = 0; i < k; i++) {
        __m512 row[4];
        TILE_UNROLL for (int v = 0; v < V; v++) row[v] = _mm512_load_ps(b + v * tileStride + 16 * i);
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
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t tileStride, int tiles, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds, int accumulate) {
    // A literal count of tiles lets the compiler keep every accumulator in a register.
    switch (tiles) {
    case 1: tile6(panel, b, k, tileStride, y, ldy, bias, bounds, accumulate, 1); break;
    case 2: tile6(panel, b, k, tileStride, y, ldy, bias, bounds, accumulate, 2); break;
    case 3: tile6(panel, b, k, tileStride, y, ldy, bias, bounds, accumulate, 3); break;
    default: tile6(panel, b, k, tileStride, y, ldy, bias, bounds, accumulate, 4); break;
    }
}

#else

void forklift_conv_tile6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t tileStride, int tiles, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds, int accumulate) {
    (void)panel, (void)b, (void)k, (void)tileStride, (void)tiles, (void)y, (void)ldy, (void)bias, (void)bounds,
        (void)accumulate;
    __builtin_trap();
}

#endif
