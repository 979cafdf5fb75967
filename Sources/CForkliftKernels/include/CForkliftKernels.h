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

/// One row of the same: y[0..<cols] (+)= x·panel. Memory-bound (each panel row is used once),
/// so it keeps four products in flight and prefetches ahead.
void forklift_panel_row1_avx512(const float *x, const float *panel, ptrdiff_t k, float *y, int cols, int accumulate);

/// Asks for the cache line at `address` to be fetched into L1 ahead of use. Panels stream from
/// memory at the small batches of inference, and the hardware prefetcher alone leaves the
/// kernels waiting on it (wide MLP, batch 8: +50% with a software prefetch 4 KiB ahead).
static inline void forklift_prefetch(const void *address) { __builtin_prefetch(address, 0, 3); }

#endif
