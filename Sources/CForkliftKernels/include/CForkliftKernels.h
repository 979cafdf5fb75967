#ifndef CFORKLIFT_KERNELS_H
#define CFORKLIFT_KERNELS_H

#include <stddef.h>

/// 1 when this CPU and OS run AVX-512F code (CPUID leaf 7 and the XCR0 state bits), else 0.
/// The kernels below may be called only when it returns 1.
int forklift_kernels_have_avx512(void);

/// Eight rows of Y = X·W for one 16-column panel of W (K runs of 16 floats):
/// y[r][0..<cols] (+)= sum over k of x[r][k]·panel[k][0..<cols], rows ldx and ldy apart.
/// With `accumulate` 0 the product overwrites Y; otherwise it is added. 1 ≤ cols ≤ 16.
void forklift_panel_rows8_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols,
    int accumulate);

/// `rows` rows of the same (1 ≤ rows ≤ 11) in one pass over the panel: a row count that is not a
/// multiple of eight ends with one such pass (8 + 9 rows for 17, 8 + 4 for 12) instead of one per
/// leftover row.
void forklift_panel_rows_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols, int accumulate,
    int rows);

/// One row of the same: y[0..<cols] (+)= x·panel. Memory-bound (each panel row is used once),
/// so it keeps four products in flight and prefetches ahead.
void forklift_panel_row1_avx512(const float *x, const float *panel, ptrdiff_t k, float *y, int cols, int accumulate);

/// Asks for the cache line at `address` to be fetched into L1 ahead of use. Panels stream from
/// memory at the small batches of inference, and the hardware prefetcher alone leaves the
/// kernels waiting on it (wide MLP, batch 8: +50% with a software prefetch 4 KiB ahead).
static inline void forklift_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

// Winograd F(2×2, 3×3) for 3×3 stride-1 convolutions (Winograd.c). A block of `count` tiles,
// t0 ..< t0 + count, is laid out in panels of 16 tiles (P = ⌈count/16⌉); a tile is a 2×2 output
// block, numbered image by image, then by tile row (tileRows per image), then by tile column
// (tileCols per row). ξ = 4i + j indexes the 4×4 transformed domain.

/// V = Bᵀ d B of every channel's 4×4 input patch of every tile of the block, into
/// v[ξ][P][channels][16]. x is the batch's input, [N, channels, height, width]; the patch of
/// tile (row r, column c) starts at input (2r − padTop, 2c − padLeft), and reads zero outside.
void forklift_winograd_input_avx512(
    const float *x, ptrdiff_t channels, ptrdiff_t height, ptrdiff_t width, ptrdiff_t padTop, ptrdiff_t padLeft,
    ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count, float *v);

/// m[ξ][rows][P·16] = u[ξ] · v[ξ] for every ξ, rows rowBegin ..< rowEnd only (multiples of 8),
/// with the filters u packed as u[ξ][rows/8][k][8] (rows a multiple of 8) and v as above with
/// k channels.
void forklift_winograd_multiply_avx512(
    const float *u, const float *v, ptrdiff_t rows, ptrdiff_t rowBegin, ptrdiff_t rowEnd, ptrdiff_t k, ptrdiff_t panels,
    float *m);

/// Y = clamp(Aᵀ m A + bias, low, high) for the block's tiles and the first `channels` of m's
/// `rows`, into y, [N, channels, outHeight, outWidth]; bias may be NULL.
void forklift_winograd_output_avx512(
    const float *m, ptrdiff_t rows, ptrdiff_t channels, const float *bias, float low, float high, float *y,
    ptrdiff_t outHeight, ptrdiff_t outWidth, ptrdiff_t tileRows, ptrdiff_t tileCols, ptrdiff_t t0, ptrdiff_t count);

// Depthwise convolution (DepthwiseKernels.c).

/// One depthwise output plane over zero-padded phase planes (see DepthwisePlanar.swift):
/// out[oh·outW + ow] = min(high, max(low, bias + Σₜ taps[t]·sources[t][oh·phaseWidth + ow])) for
/// t < tapCount. Reads stay below sources[t] + outH·phaseWidth. AVX-512 only.
void forklift_depthwise_plane_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int tapCount, float bias, float low, float high);

/// Writes input plane x [inH, inW] into its phase planes (phase (a, b) at phases + (a·strideW + b)·phaseSize,
/// rows phaseWidth apart), padded by padTop rows and padLeft columns; strides 1 or 2 only.
/// Only positions that hold input are written: the padding keeps what the planes held. AVX-512 only.
void forklift_depthwise_fill_avx512(
    float *phases, ptrdiff_t phaseSize, ptrdiff_t phaseWidth, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, int strideH, int strideW);

/// `forklift_depthwise_plane_avx512` for a square kernel × kernel without dilation at the given
/// row stride (the phase planes' column stride does not matter), faster for kernel 3 or 5 and
/// stride 1 or 2; other sizes go to the general kernel. AVX-512 only.
void forklift_depthwise_square_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int kernel, int stride, float bias, float low, float high);

/// One output plane [outH, outW] of a stride-1, undilated kernel × kernel (3 or 5) depthwise
/// convolution read straight from input plane x [inH, inW] padded by padTop rows and padLeft
/// columns (zeros; the bottom and right padding follow from the sizes), with no phase planes:
/// out = min(high, max(low, bias + taps ⋆ x)). Reads only x's own floats. AVX-512 only.
void forklift_depthwise_direct_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, const float *taps, int kernel, float bias, float low, float high);

// Packed-filter convolution tiles (ConvTileKernels.c).

/// Six output rows × 16·tiles columns (1 ≤ tiles ≤ 4) of act(bias + panel · B): `panel` holds
/// 6 floats per k; tile v of B holds 16 floats per k, bStride floats apart, from b + v·tileStride
/// (packed tiles: bStride 16, tileStride 16·k; B as it lies: its row stride, 16). Rows of y are
/// ldy apart. With `accumulate` the product is added to what y holds, instead of to `bias`
/// (6 floats). `bounds` holds the activation's low and high (±∞ without one). AVX-512 only.
void forklift_conv_tile6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, ptrdiff_t tileStride, int tiles, float *y,
    ptrdiff_t ldy, const float *bias, const float *bounds, int accumulate);

/// The first `rows` (≤ 6) rows × `columns` (1…8) columns of the same product, y = act(bias + panel · B),
/// for B `columns` floats per k, bStride floats apart (only those are read). `bias` holds 6 floats.
/// AVX-512 only.
void forklift_conv_narrow6_avx512(
    const float *panel, const float *b, ptrdiff_t k, ptrdiff_t bStride, int columns, int rows, float *y, ptrdiff_t ldy,
    const float *bias, const float *bounds);

#endif
