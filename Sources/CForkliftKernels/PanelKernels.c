// AVX-512 kernels, compiled per function with `target` attributes and chosen at run time,
// so that the binary still runs on CPUs without AVX-512. They are in C because Swift cannot
// enable an instruction set for one function only.
#include "CForkliftKernels.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

int forklift_kernels_have_avx512(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & bit_OSXSAVE)) return 0;
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    // The OS must save SSE, AVX and the three AVX-512 register states (opmask, ZMM halves).
    const unsigned wanted = (1u << 1) | (1u << 2) | (1u << 5) | (1u << 6) | (1u << 7);
    if ((lo & wanted) != wanted) return 0;
    if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return 0;
    return (ebx & bit_AVX512F) ? 1 : 0;
}

// One ZMM register holds a whole 16-float row of the panel, so eight rows need only eight
// accumulators and every panel row is loaded once per eight rows of X: half the cache traffic
// of a four-row AVX2 kernel, which matters when W streams from L3 or memory (batch 8 MLPs).
__attribute__((target("avx512f,fma"))) void forklift_panel_rows8_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols,
    int accumulate) {
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
    __m512 c4 = _mm512_setzero_ps(), c5 = _mm512_setzero_ps(), c6 = _mm512_setzero_ps(), c7 = _mm512_setzero_ps();
    const float *x0 = x, *x1 = x + ldx, *x2 = x + 2 * ldx, *x3 = x + 3 * ldx;
    const float *x4 = x + 4 * ldx, *x5 = x + 5 * ldx, *x6 = x + 6 * ldx, *x7 = x + 7 * ldx;
    for (ptrdiff_t i = 0; i < k; i++) {
        forklift_prefetch(panel + (i + 64) * 16);
        const __m512 w = _mm512_loadu_ps(panel + i * 16);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(x0[i]), w, c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(x1[i]), w, c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(x2[i]), w, c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(x3[i]), w, c3);
        c4 = _mm512_fmadd_ps(_mm512_set1_ps(x4[i]), w, c4);
        c5 = _mm512_fmadd_ps(_mm512_set1_ps(x5[i]), w, c5);
        c6 = _mm512_fmadd_ps(_mm512_set1_ps(x6[i]), w, c6);
        c7 = _mm512_fmadd_ps(_mm512_set1_ps(x7[i]), w, c7);
    }
    const __mmask16 mask = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    __m512 rows[8] = {c0, c1, c2, c3, c4, c5, c6, c7};
    for (int r = 0; r < 8; r++) {
        float *out = y + r * ldy;
        __m512 v = rows[r];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
        _mm512_mask_storeu_ps(out, mask, v);
    }
}

// The same for `R` rows, R known at compile time (each case of the switch below inlines its
// own copy): the compiler unrolls the row loops and keeps the R accumulators in registers, so a
// row count that is not a multiple of eight costs one pass over the panel instead of a pass per
// leftover row (the wide MLP at batch 3: 2,639 → 4,673 samples/s). Up to 11 rows: measured on
// the wide MLP, 9–11 rows run at 96–100 GFLOP/s like eight, while 12–15 fall to 84–65.
static inline __attribute__((always_inline, target("avx512f,fma"))) void panel_rows(
    const int R, const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols,
    int accumulate) {
    __m512 c[11];
    for (int r = 0; r < R; r++) c[r] = _mm512_setzero_ps();
    for (ptrdiff_t i = 0; i < k; i++) {
        forklift_prefetch(panel + (i + 64) * 16);
        const __m512 w = _mm512_loadu_ps(panel + i * 16);
        for (int r = 0; r < R; r++) c[r] = _mm512_fmadd_ps(_mm512_set1_ps(x[r * ldx + i]), w, c[r]);
    }
    const __mmask16 mask = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    for (int r = 0; r < R; r++) {
        float *out = y + r * ldy;
        __m512 v = c[r];
        if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, out));
        _mm512_mask_storeu_ps(out, mask, v);
    }
}

__attribute__((target("avx512f,fma"))) void forklift_panel_rows_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols, int accumulate,
    int rows) {
#define FORKLIFT_PANEL_ROWS_CASE(R) \
    case R: panel_rows(R, x, ldx, panel, k, y, ldy, cols, accumulate); break;
    switch (rows) {
        FORKLIFT_PANEL_ROWS_CASE(1)
        FORKLIFT_PANEL_ROWS_CASE(2)
        FORKLIFT_PANEL_ROWS_CASE(3)
        FORKLIFT_PANEL_ROWS_CASE(4)
        FORKLIFT_PANEL_ROWS_CASE(5)
        FORKLIFT_PANEL_ROWS_CASE(6)
        FORKLIFT_PANEL_ROWS_CASE(7)
        FORKLIFT_PANEL_ROWS_CASE(8)
        FORKLIFT_PANEL_ROWS_CASE(9)
        FORKLIFT_PANEL_ROWS_CASE(10)
        FORKLIFT_PANEL_ROWS_CASE(11)
        default: __builtin_trap();
    }
#undef FORKLIFT_PANEL_ROWS_CASE
}

__attribute__((target("avx512f,fma"))) void forklift_panel_row1_avx512(
    const float *x, const float *panel, ptrdiff_t k, float *y, int cols, int accumulate) {
    __m512 c0 = _mm512_setzero_ps(), c1 = _mm512_setzero_ps(), c2 = _mm512_setzero_ps(), c3 = _mm512_setzero_ps();
    ptrdiff_t i = 0;
    for (; i + 4 <= k; i += 4) {
        const float *w = panel + i * 16;
        forklift_prefetch(w + 64 * 16);
        forklift_prefetch(w + 65 * 16);
        forklift_prefetch(w + 66 * 16);
        forklift_prefetch(w + 67 * 16);
        c0 = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), _mm512_loadu_ps(w), c0);
        c1 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 1]), _mm512_loadu_ps(w + 16), c1);
        c2 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 2]), _mm512_loadu_ps(w + 32), c2);
        c3 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 3]), _mm512_loadu_ps(w + 48), c3);
    }
    for (; i < k; i++) c0 = _mm512_fmadd_ps(_mm512_set1_ps(x[i]), _mm512_loadu_ps(panel + i * 16), c0);
    const __mmask16 mask = cols >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << cols) - 1);
    __m512 v = _mm512_add_ps(_mm512_add_ps(c0, c1), _mm512_add_ps(c2, c3));
    if (accumulate) v = _mm512_add_ps(v, _mm512_maskz_loadu_ps(mask, y));
    _mm512_mask_storeu_ps(y, mask, v);
}

#else

int forklift_kernels_have_avx512(void) { return 0; }

void forklift_panel_rows8_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols,
    int accumulate) {
    (void)x, (void)ldx, (void)panel, (void)k, (void)y, (void)ldy, (void)cols, (void)accumulate;
    __builtin_trap();
}

void forklift_panel_row1_avx512(const float *x, const float *panel, ptrdiff_t k, float *y, int cols, int accumulate) {
    (void)x, (void)panel, (void)k, (void)y, (void)cols, (void)accumulate;
    __builtin_trap();
}

void forklift_panel_rows_avx512(
    const float *x, ptrdiff_t ldx, const float *panel, ptrdiff_t k, float *y, ptrdiff_t ldy, int cols, int accumulate,
    int rows) {
    (void)x, (void)ldx, (void)panel, (void)k, (void)y, (void)ldy, (void)cols, (void)accumulate, (void)rows;
    __builtin_trap();
}

#endif
