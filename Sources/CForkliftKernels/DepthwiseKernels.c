// The arithmetic of one depthwise output plane over zero-padded phase planes, in AVX-512
// (see DepthwisePlanar.swift for the layout). Swift's SIMD8 code for it compiled to split
// 128-bit halves; here a row is 16 lanes with masked loads and stores at its end, and planes
// narrower than a vector are computed as one run over the phase rows (see `linear`).
#include "CForkliftKernels.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define DW_TARGET __attribute__((target("avx512f,fma")))
#define DW_INLINE static inline __attribute__((always_inline)) DW_TARGET
#define DW_UNROLL _Pragma("clang loop unroll(full)")

// Most virtual outputs (rows × phase width) that `linear` keeps on the stack.
enum { LINEAR_MAX = 2048 };

DW_INLINE __mmask16 dw_mask(ptrdiff_t count) {
    return count >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << count) - 1);
}

// max(low, v) then min(high, ·): a NaN in v is the second operand of both and passes through.
DW_INLINE __m512 dw_clamp(__m512 v, __m512 low, __m512 high) {
    return _mm512_min_ps(high, _mm512_max_ps(low, v));
}

// Four output rows (oh … oh + 3) × 16 columns from c0, lanes past `mask` neither read nor written.
DW_INLINE void dw_four_rows(
    float *out, ptrdiff_t outW, ptrdiff_t oh, ptrdiff_t c0, __mmask16 mask, const float *const *sources, ptrdiff_t q,
    const float *taps, int tapCount, __m512 bias, __m512 low, __m512 high) {
    __m512 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
    const ptrdiff_t at = oh * q + c0;
    for (int t = 0; t < tapCount; t++) {
        const float *s = sources[t] + at;
        const __m512 w = _mm512_set1_ps(taps[t]);
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, s), w, a0);
        a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, s + q), w, a1);
        a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, s + 2 * q), w, a2);
        a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, s + 3 * q), w, a3);
    }
    float *o = out + oh * outW + c0;
    _mm512_mask_storeu_ps(o, mask, dw_clamp(a0, low, high));
    _mm512_mask_storeu_ps(o + outW, mask, dw_clamp(a1, low, high));
    _mm512_mask_storeu_ps(o + 2 * outW, mask, dw_clamp(a2, low, high));
    _mm512_mask_storeu_ps(o + 3 * outW, mask, dw_clamp(a3, low, high));
}

DW_INLINE void dw_one_row(
    float *out, ptrdiff_t outW, ptrdiff_t oh, ptrdiff_t c0, __mmask16 mask, const float *const *sources, ptrdiff_t q,
    const float *taps, int tapCount, __m512 bias, __m512 low, __m512 high) {
    __m512 a0 = bias;
    const ptrdiff_t at = oh * q + c0;
    for (int t = 0; t < tapCount; t++)
        a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(mask, sources[t] + at), _mm512_set1_ps(taps[t]), a0);
    _mm512_mask_storeu_ps(out + oh * outW + c0, mask, dw_clamp(a0, low, high));
}

// Row by row, in tiles of four rows × 16 columns. When outH is not a multiple of four, the last
// tile overlaps the one before it and recomputes (identically) a few rows.
DW_INLINE void dw_rows(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t q, const float *taps, int tapCount,
    __m512 bias, __m512 low, __m512 high) {
    if (outH < 4) {
        for (ptrdiff_t oh = 0; oh < outH; oh++)
            for (ptrdiff_t c0 = 0; c0 < outW; c0 += 16)
                dw_one_row(out, outW, oh, c0, dw_mask(outW - c0), sources, q, taps, tapCount, bias, low, high);
        return;
    }
    for (ptrdiff_t g = 0; g < outH; g += 4) {
        const ptrdiff_t oh = g + 4 <= outH ? g : outH - 4;
        for (ptrdiff_t c0 = 0; c0 < outW; c0 += 16)
            dw_four_rows(out, outW, oh, c0, dw_mask(outW - c0), sources, q, taps, tapCount, bias, low, high);
    }
}

// A narrow plane as one run: output (oh, ow) reads every source at oh·q + ow, so the virtual
// outputs i = oh·q + ow for ow < q are a 1-D convolution over i, vectorised across row ends.
// The q − outW columns past each row are computed into `buffer` and dropped on the copy out.
// Every read stays below sources[t] + outH·q, inside the phase plane.
DW_INLINE void dw_linear(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t q, const float *taps, int tapCount,
    __m512 bias, __m512 low, __m512 high) {
    float buffer[LINEAR_MAX + 64];
    const ptrdiff_t total = outH * q;
    for (ptrdiff_t i0 = 0; i0 < total; i0 += 64) {
        const __mmask16 m0 = dw_mask(total - i0), m1 = dw_mask(total - i0 - 16);
        const __mmask16 m2 = dw_mask(total - i0 - 32), m3 = dw_mask(total - i0 - 48);
        __m512 a0 = bias, a1 = bias, a2 = bias, a3 = bias;
        for (int t = 0; t < tapCount; t++) {
            const float *s = sources[t] + i0;
            const __m512 w = _mm512_set1_ps(taps[t]);
            a0 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m0, s), w, a0);
            a1 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m1, s + 16), w, a1);
            a2 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m2, s + 32), w, a2);
            a3 = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m3, s + 48), w, a3);
        }
        _mm512_storeu_ps(buffer + i0, dw_clamp(a0, low, high));
        _mm512_storeu_ps(buffer + i0 + 16, dw_clamp(a1, low, high));
        _mm512_storeu_ps(buffer + i0 + 32, dw_clamp(a2, low, high));
        _mm512_storeu_ps(buffer + i0 + 48, dw_clamp(a3, low, high));
    }
    const __mmask16 row = dw_mask(outW);
    for (ptrdiff_t oh = 0; oh < outH; oh++)
        _mm512_mask_storeu_ps(out + oh * outW, row, _mm512_maskz_loadu_ps(row, buffer + oh * q));
}

DW_INLINE void dw_plane(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t q, const float *taps, int tapCount,
    float bias, float low, float high) {
    const __m512 b = _mm512_set1_ps(bias), l = _mm512_set1_ps(low), h = _mm512_set1_ps(high);
    // Vectors each way computes; the run pays a copy too, so it must save a vector.
    const ptrdiff_t rowVectors = (outH < 4 ? outH : (outH + 3) / 4 * 4) * ((outW + 15) / 16);
    const ptrdiff_t linearVectors = (outH * q + 15) / 16;
    if (outW < 16 && outH * q <= LINEAR_MAX && linearVectors < rowVectors)
        dw_linear(out, outH, outW, sources, q, taps, tapCount, b, l, h);
    else
        dw_rows(out, outH, outW, sources, q, taps, tapCount, b, l, h);
}

// dst[0 ..< count] = src[0 ..< count], 16 lanes at a time, the last masked.
DW_INLINE void dw_copy(float *dst, const float *src, ptrdiff_t count) {
    for (ptrdiff_t j = 0; j < count; j += 16) {
        const __mmask16 m = dw_mask(count - j);
        _mm512_mask_storeu_ps(dst + j, m, _mm512_maskz_loadu_ps(m, src + j));
    }
}

// even[j] = src[2j] for j < (count + 1) / 2 and odd[j] = src[2j + 1] for j < count / 2.
DW_INLINE void dw_deinterleave(float *even, float *odd, const float *src, ptrdiff_t count) {
    const __m512i evens = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odds = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    for (ptrdiff_t j = 0; j < count; j += 32) {
        const ptrdiff_t n = count - j;
        const __m512 lo = _mm512_maskz_loadu_ps(dw_mask(n), src + j);
        const __m512 hi = _mm512_maskz_loadu_ps(dw_mask(n - 16), src + j + 16);
        _mm512_mask_storeu_ps(even + j / 2, dw_mask((n + 1) / 2), _mm512_permutex2var_ps(lo, evens, hi));
        _mm512_mask_storeu_ps(odd + j / 2, dw_mask(n / 2), _mm512_permutex2var_ps(lo, odds, hi));
    }
}

DW_TARGET void forklift_depthwise_fill_avx512(
    float *phases, ptrdiff_t phaseSize, ptrdiff_t phaseWidth, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, int strideH, int strideW) {
    for (ptrdiff_t ih = 0; ih < inH; ih++) {
        const ptrdiff_t padded = ih + padTop;
        const ptrdiff_t a = strideH == 2 ? padded & 1 : 0, i = strideH == 2 ? padded >> 1 : padded;
        const float *src = x + ih * inW;
        float *row = phases + a * strideW * phaseSize + i * phaseWidth;
        if (strideW == 1) {
            dw_copy(row + padLeft, src, inW);
        } else {
            // Even input columns land in phase padLeft mod 2 at column padLeft / 2, odd ones in the
            // other phase at (padLeft + 1) / 2.
            const ptrdiff_t b = padLeft & 1;
            dw_deinterleave(row + b * phaseSize + (padLeft >> 1), row + (1 - b) * phaseSize + ((padLeft + 1) >> 1), src, inW);
        }
    }
}

DW_TARGET void forklift_depthwise_plane_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int tapCount, float bias, float low, float high) {
    // Literal tap counts let the compiler unroll the tap loop (and keep the weights in registers).
    switch (tapCount) {
    case 9: dw_plane(out, outH, outW, sources, phaseWidth, taps, 9, bias, low, high); break;
    case 25: dw_plane(out, outH, outW, sources, phaseWidth, taps, 25, bias, low, high); break;
    default: dw_plane(out, outH, outW, sources, phaseWidth, taps, tapCount, bias, low, high); break;
    }
}

// Output rows oh … oh + R − 1 × 16 columns from c0 for a square kernel of side K without dilation,
// row stride S (1 or 2). Each load of a phase row feeds every output row that reads it (up to
// ⌈K / S⌉ of them), instead of one: a 16-float load at a tap's offset is almost always split
// across two cache lines, and one per multiply-add left the FMA unit idle half the time.
// Tap (kh, kw) reads sources[kh·K + kw] + (oh + r)·q = sources[(kh mod S)·K + kw] + (oh + r + kh / S)·q.
DW_INLINE void dw_reuse_rows(
    float *out, ptrdiff_t outW, ptrdiff_t oh, ptrdiff_t c0, __mmask16 mask, const float *const *sources, ptrdiff_t q,
    const float *taps, int K, int S, int R, __m512 bias, __m512 low, __m512 high) {
    __m512 acc[8];
    // Fully unrolled (the sizes are literals), so that the tap conditions vanish and the
    // accumulators stay in registers.
    DW_UNROLL for (int r = 0; r < R; r++) acc[r] = bias;
    DW_UNROLL for (int a = 0; a < S; a++) {
        DW_UNROLL for (int j = 0; j < R + (K - 1 - a) / S; j++) {
            DW_UNROLL for (int kw = 0; kw < K; kw++) {
                const __m512 v = _mm512_maskz_loadu_ps(mask, sources[a * K + kw] + (oh + j) * q + c0);
                DW_UNROLL for (int r = 0; r < R; r++) {
                    const int kh = (j - r) * S + a;
                    if (kh >= 0 && kh < K) acc[r] = _mm512_fmadd_ps(v, _mm512_set1_ps(taps[kh * K + kw]), acc[r]);
                }
            }
        }
    }
    DW_UNROLL for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + (oh + r) * outW + c0, mask, dw_clamp(acc[r], low, high));
}

// `dw_rows` for a square kernel (`dw_reuse_rows`): tiles of R rows, the last overlapping the one
// before it when outH is not a multiple of R; planes shorter than R go one row at a time.
DW_INLINE void dw_reuse_plane(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t q, const float *taps, int K, int S,
    __m512 bias, __m512 low, __m512 high) {
    enum { R = 4 };
    if (outH < R) {
        for (ptrdiff_t oh = 0; oh < outH; oh++)
            for (ptrdiff_t c0 = 0; c0 < outW; c0 += 16)
                dw_reuse_rows(out, outW, oh, c0, dw_mask(outW - c0), sources, q, taps, K, S, 1, bias, low, high);
        return;
    }
    for (ptrdiff_t g = 0; g < outH; g += R) {
        const ptrdiff_t oh = g + R <= outH ? g : outH - R;
        for (ptrdiff_t c0 = 0; c0 < outW; c0 += 16)
            dw_reuse_rows(out, outW, oh, c0, dw_mask(outW - c0), sources, q, taps, K, S, R, bias, low, high);
    }
}

// `dw_reuse_rows` in 8-lane vectors, for planes at most 8 wide (7×7): two 256-bit multiply-adds
// issue per cycle where one 512-bit does, so 7 useful lanes of 8 run at twice the rate of 7 of
// 16. The loads are plain: a phase row has room for 8 floats past any tap's output start.
DW_INLINE void dw_reuse_rows8(
    float *out, ptrdiff_t outW, ptrdiff_t oh, const float *const *sources, ptrdiff_t q, const float *taps, int K, int S, int R,
    float bias, __m512 low, __m512 high) {
    __m256 acc[8];
    DW_UNROLL for (int r = 0; r < R; r++) acc[r] = _mm256_set1_ps(bias);
    DW_UNROLL for (int a = 0; a < S; a++) {
        DW_UNROLL for (int j = 0; j < R + (K - 1 - a) / S; j++) {
            DW_UNROLL for (int kw = 0; kw < K; kw++) {
                const __m256 v = _mm256_loadu_ps(sources[a * K + kw] + (oh + j) * q);
                DW_UNROLL for (int r = 0; r < R; r++) {
                    const int kh = (j - r) * S + a;
                    if (kh >= 0 && kh < K) acc[r] = _mm256_fmadd_ps(v, _mm256_set1_ps(taps[kh * K + kw]), acc[r]);
                }
            }
        }
    }
    const __mmask16 mask = dw_mask(outW);
    DW_UNROLL for (int r = 0; r < R; r++) {
        const __m512 v = _mm512_castps256_ps512(acc[r]);
        _mm512_mask_storeu_ps(out + (oh + r) * outW, mask, dw_clamp(v, low, high));
    }
}

DW_INLINE void dw_reuse_plane8(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t q, const float *taps, int K, int S,
    float bias, __m512 low, __m512 high) {
    enum { R = 4 };
    if (outH < R) {
        for (ptrdiff_t oh = 0; oh < outH; oh++) dw_reuse_rows8(out, outW, oh, sources, q, taps, K, S, 1, bias, low, high);
        return;
    }
    for (ptrdiff_t g = 0; g < outH; g += R) {
        const ptrdiff_t oh = g + R <= outH ? g : outH - R;
        dw_reuse_rows8(out, outW, oh, sources, q, taps, K, S, R, bias, low, high);
    }
}

DW_TARGET void forklift_depthwise_square_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int kernel, int stride, float bias, float low, float high) {
    const __m512 b = _mm512_set1_ps(bias), l = _mm512_set1_ps(low), h = _mm512_set1_ps(high);
    const ptrdiff_t q = phaseWidth;
    if (outW <= 8 && (kernel == 3 || kernel == 5) && (stride == 1 || stride == 2)) {
        if (kernel == 3 && stride == 1) dw_reuse_plane8(out, outH, outW, sources, q, taps, 3, 1, bias, l, h);
        else if (kernel == 3) dw_reuse_plane8(out, outH, outW, sources, q, taps, 3, 2, bias, l, h);
        else if (stride == 1) dw_reuse_plane8(out, outH, outW, sources, q, taps, 5, 1, bias, l, h);
        else dw_reuse_plane8(out, outH, outW, sources, q, taps, 5, 2, bias, l, h);
        return;
    }
    // Literal sizes let the compiler unroll every loop and drop the tap conditions.
    if (kernel == 3 && stride == 1) dw_reuse_plane(out, outH, outW, sources, q, taps, 3, 1, b, l, h);
    else if (kernel == 3 && stride == 2) dw_reuse_plane(out, outH, outW, sources, q, taps, 3, 2, b, l, h);
    else if (kernel == 5 && stride == 1) dw_reuse_plane(out, outH, outW, sources, q, taps, 5, 1, b, l, h);
    else if (kernel == 5 && stride == 2) dw_reuse_plane(out, outH, outW, sources, q, taps, 5, 2, b, l, h);
    else forklift_depthwise_plane_avx512(out, outH, outW, sources, phaseWidth, taps, kernel * kernel, bias, low, high);
}

// Lanes l of the 16 from output column c0 whose input column c0 + l + kw − padLeft lies in
// 0 ..< inW: the rest read as zero (the padding), and masked-off lanes are never touched.
DW_INLINE __mmask16 dw_column_mask(ptrdiff_t c0, int kw, ptrdiff_t padLeft, ptrdiff_t inW) {
    ptrdiff_t lo = padLeft - kw - c0, hi = inW + padLeft - kw - c0;
    lo = lo < 0 ? 0 : lo;
    hi = hi > 16 ? 16 : hi;
    if (hi <= lo) return 0;
    return (__mmask16)(((1u << hi) - 1) & ~((1u << lo) - 1));
}

// Output rows oh … oh + R − 1 × 16 columns from c0 of a stride-1 square K×K convolution read
// straight from the input plane: columns outside it load as zeros through `columns` (the
// `dw_column_mask` of each kw), and rows outside it, unless the caller knows there are none
// (`interior`), with an empty mask (without touching memory). Each input row load feeds every
// output row that reads it, as in `dw_reuse_rows`.
DW_INLINE void dw_direct_rows(
    float *out, ptrdiff_t outW, ptrdiff_t oh, ptrdiff_t c0, __mmask16 mask, const __mmask16 *columns, const float *x,
    ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop, ptrdiff_t padLeft, const float *taps, int K, int R, int interior,
    __m512 bias, __m512 low, __m512 high) {
    __m512 acc[8];
    DW_UNROLL for (int r = 0; r < R; r++) acc[r] = bias;
    DW_UNROLL for (int j = 0; j < R + K - 1; j++) {
        const ptrdiff_t ih = oh + j - padTop;
        const int inside = interior || (ih >= 0 && ih < inH);
        const float *row = x + ih * inW + c0 - padLeft;
        DW_UNROLL for (int kw = 0; kw < K; kw++) {
            const __m512 v = _mm512_maskz_loadu_ps(inside ? columns[kw] : 0, row + kw);
            DW_UNROLL for (int r = 0; r < R; r++) {
                const int kh = j - r;
                if (kh >= 0 && kh < K) acc[r] = _mm512_fmadd_ps(v, _mm512_set1_ps(taps[kh * K + kw]), acc[r]);
            }
        }
    }
    DW_UNROLL for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(out + (oh + r) * outW + c0, mask, dw_clamp(acc[r], low, high));
}

// Column blocks outside, tiles of R rows inside (the last overlapping the one before it), so that
// a block's masks are computed once and rows need checking only near the top and bottom.
DW_INLINE void dw_direct_plane(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, const float *taps, int K, __m512 bias, __m512 low, __m512 high) {
    enum { R = 4 };
    for (ptrdiff_t c0 = 0; c0 < outW; c0 += 16) {
        __mmask16 columns[8];
        DW_UNROLL for (int kw = 0; kw < K; kw++) columns[kw] = dw_column_mask(c0, kw, padLeft, inW);
        const __mmask16 mask = dw_mask(outW - c0);
        if (outH < R) {
            for (ptrdiff_t oh = 0; oh < outH; oh++)
                dw_direct_rows(out, outW, oh, c0, mask, columns, x, inH, inW, padTop, padLeft, taps, K, 1, 0, bias, low, high);
            continue;
        }
        for (ptrdiff_t g = 0; g < outH; g += R) {
            const ptrdiff_t oh = g + R <= outH ? g : outH - R;
            if (oh >= padTop && oh + R + K - 1 - padTop <= inH)
                dw_direct_rows(out, outW, oh, c0, mask, columns, x, inH, inW, padTop, padLeft, taps, K, R, 1, bias, low, high);
            else
                dw_direct_rows(out, outW, oh, c0, mask, columns, x, inH, inW, padTop, padLeft, taps, K, R, 0, bias, low, high);
        }
    }
}

DW_TARGET void forklift_depthwise_direct_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, const float *taps, int kernel, float bias, float low, float high) {
    const __m512 b = _mm512_set1_ps(bias), l = _mm512_set1_ps(low), h = _mm512_set1_ps(high);
    if (kernel == 3) dw_direct_plane(out, outH, outW, x, inH, inW, padTop, padLeft, taps, 3, b, l, h);
    else dw_direct_plane(out, outH, outW, x, inH, inW, padTop, padLeft, taps, 5, b, l, h);
}

#else

void forklift_depthwise_direct_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, const float *taps, int kernel, float bias, float low, float high) {
    (void)out, (void)outH, (void)outW, (void)x, (void)inH, (void)inW, (void)padTop, (void)padLeft, (void)taps, (void)kernel,
        (void)bias, (void)low, (void)high;
    __builtin_trap();
}

void forklift_depthwise_square_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int kernel, int stride, float bias, float low, float high) {
    (void)out, (void)outH, (void)outW, (void)sources, (void)phaseWidth, (void)taps, (void)kernel, (void)stride, (void)bias,
        (void)low, (void)high;
    __builtin_trap();
}

void forklift_depthwise_fill_avx512(
    float *phases, ptrdiff_t phaseSize, ptrdiff_t phaseWidth, const float *x, ptrdiff_t inH, ptrdiff_t inW, ptrdiff_t padTop,
    ptrdiff_t padLeft, int strideH, int strideW) {
    (void)phases, (void)phaseSize, (void)phaseWidth, (void)x, (void)inH, (void)inW, (void)padTop, (void)padLeft, (void)strideH,
        (void)strideW;
    __builtin_trap();
}

void forklift_depthwise_plane_avx512(
    float *out, ptrdiff_t outH, ptrdiff_t outW, const float *const *sources, ptrdiff_t phaseWidth, const float *taps,
    int tapCount, float bias, float low, float high) {
    (void)out, (void)outH, (void)outW, (void)sources, (void)phaseWidth, (void)taps, (void)tapCount, (void)bias, (void)low,
        (void)high;
    __builtin_trap();
}

#endif
