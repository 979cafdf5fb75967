import CForkliftKernels
import Foundation

/// Y = X·W for a W packed once into column panels: panel p holds W[0..<K, 16p..<16p+16] as K
/// consecutive runs of 16 floats (zero-padded past N). The microkernels stream a panel once per
/// block of rows of X (8 rows with AVX-512, in C; 4 rows with AVX2, in Swift), so that, unlike
/// sgemm, a run never repacks W. (The Swift kernels need the engine compiled for AVX2/FMA,
/// `-target-cpu haswell`; otherwise they are still correct.)
enum PanelKernel {
    static let width = 16
    /// Rows of X whose panel products share one pass over the panel while it sits in L2.
    static let rowChunk = 64

    static func packedCount(n: Int, k: Int) -> Int { (n + width - 1) / width * k * width }

    /// dst ← alpha·W in panels, from W stored as [K, N] or, when `transposed`, as [N, K].
    static func pack(
        _ src: UnsafePointer<Float>, n: Int, k: Int, transposed: Bool, alpha: Float,
        into dst: UnsafeMutablePointer<Float>
    ) {
        let panels = (n + width - 1) / width
        for p in 0..<panels {
            let base = dst + p * k * width
            for c in 0..<width {
                let col = p * width + c
                if col >= n {
                    for kk in 0..<k { base[kk * width + c] = 0 }
                } else if transposed {
                    let row = src + col * k
                    for kk in 0..<k { base[kk * width + c] = alpha * row[kk] }
                } else {
                    for kk in 0..<k { base[kk * width + c] = alpha * src[kk * n + col] }
                }
            }
        }
    }

    /// Fewest multiply-adds per thread worth a parallel dispatch: below this the hand-off to a
    /// pool thread (a few microseconds when it has gone to sleep) costs more than it saves.
    static let minParallelWork = 1 << 18
    /// Bytes ahead of the current panel row that the kernels prefetch (64 panel rows).
    private static let prefetchDistance = 64 * width * MemoryLayout<Float>.size

    /// Y[M, N] (row stride N) = X[M, K] (row stride `ldx`)·W, or Y += X·W when `accumulate`,
    /// then the epilogue. Panels are split across the engine's threads; each thread finishes its
    /// own columns while they are still in its cache. `wide` false keeps to the AVX2 kernels
    /// (what CPUs without AVX-512 run; tests use it to cover them here).
    static func multiply(
        _ x: UnsafePointer<Float>, ldx: Int, m: Int, panels w: UnsafePointer<Float>, n: Int, k: Int,
        _ y: UnsafeMutablePointer<Float>, accumulate: Bool, epilogue: Epilogue, wide: Bool = CPUFeatures.hasAVX512
    ) {
        let panels = (n + width - 1) / width
        let work = m * k * panels * width
        let threads = ParallelPool.shared.threads
        // A few parts per thread, so that a thread that gets its core late leaves less behind.
        let parts = threads == 1 ? 1 : min(4 * threads, panels, max(1, work / minParallelWork))
        ParallelPool.shared.forEachChunk(count: panels, parts: parts) { range in
            multiply(x, ldx: ldx, m: m, panels: w, n: n, k: k, y, accumulate: accumulate, epilogue: epilogue, wide: wide, range: range)
        }
    }

    /// The panels in `range` only: output columns 16·lowerBound ..< min(16·upperBound, N).
    private static func multiply(
        _ x: UnsafePointer<Float>, ldx: Int, m: Int, panels w: UnsafePointer<Float>, n: Int, k: Int,
        _ y: UnsafeMutablePointer<Float>, accumulate: Bool, epilogue: Epilogue, wide: Bool, range: Range<Int>
    ) {
        guard !range.isEmpty else { return }
        for m0 in stride(from: 0, to: m, by: rowChunk) {
            let m1 = min(m0 + rowChunk, m)
            for p in range {
                let panel = w + p * k * width
                let cols = min(width, n - p * width)
                var row = m0
                if wide {
                    // Eight rows at a time; what is left, 2 to 11 rows, in one pass. More rows
                    // than 11 in one pass run slower than 8 and the rest.
                    while m1 - row >= 12 {
                        forklift_panel_rows8_avx512(
                            x + row * ldx, ldx, panel, k, y + row * n + p * width, n, Int32(cols), accumulate ? 1 : 0)
                        row += 8
                    }
                    let left = m1 - row
                    if left == 8 {
                        forklift_panel_rows8_avx512(
                            x + row * ldx, ldx, panel, k, y + row * n + p * width, n, Int32(cols), accumulate ? 1 : 0)
                        row = m1
                    } else if left > 1 {
                        forklift_panel_rows_avx512(
                            x + row * ldx, ldx, panel, k, y + row * n + p * width, n, Int32(cols), accumulate ? 1 : 0, Int32(left))
                        row = m1
                    }
                }
                while row + 4 <= m1 {
                    rows4(x + row * ldx, ldx: ldx, panel, k: k, y + row * n + p * width, ldy: n, cols: cols, accumulate)
                    row += 4
                }
                while wide, row < m1 {
                    forklift_panel_row1_avx512(x + row * ldx, panel, k, y + row * n + p * width, Int32(cols), accumulate ? 1 : 0)
                    row += 1
                }
                while row < m1 {
                    rows1(x + row * ldx, panel, k: k, y + row * n + p * width, cols: cols, accumulate)
                    row += 1
                }
            }
        }
        epilogue.finish(y, rows: m, n: n, columns: (range.lowerBound * width)..<min(range.upperBound * width, n))
    }

    @inline(__always)
    private static func rows4(
        _ x: UnsafePointer<Float>, ldx: Int, _ panel: UnsafePointer<Float>, k: Int, _ y: UnsafeMutablePointer<Float>,
        ldy: Int, cols: Int, _ accumulate: Bool
    ) {
        var c00 = SIMD8<Float>()
        var c01 = SIMD8<Float>()
        var c10 = SIMD8<Float>()
        var c11 = SIMD8<Float>()
        var c20 = SIMD8<Float>()
        var c21 = SIMD8<Float>()
        var c30 = SIMD8<Float>()
        var c31 = SIMD8<Float>()
        var wp = UnsafeRawPointer(panel)
        let x1 = x + ldx
        let x2 = x1 + ldx
        let x3 = x2 + ldx
        for kk in 0..<k {
            forklift_prefetch(wp + prefetchDistance)
            let w0 = wp.loadUnaligned(as: SIMD8<Float>.self)
            let w1 = wp.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
            wp += 64
            let b0 = SIMD8<Float>(repeating: x[kk])
            c00.addProduct(b0, w0)
            c01.addProduct(b0, w1)
            let b1 = SIMD8<Float>(repeating: x1[kk])
            c10.addProduct(b1, w0)
            c11.addProduct(b1, w1)
            let b2 = SIMD8<Float>(repeating: x2[kk])
            c20.addProduct(b2, w0)
            c21.addProduct(b2, w1)
            let b3 = SIMD8<Float>(repeating: x3[kk])
            c30.addProduct(b3, w0)
            c31.addProduct(b3, w1)
        }
        store(c00, c01, y, cols: cols, accumulate)
        store(c10, c11, y + ldy, cols: cols, accumulate)
        store(c20, c21, y + 2 * ldy, cols: cols, accumulate)
        store(c30, c31, y + 3 * ldy, cols: cols, accumulate)
    }

    /// One row: memory-bound on the panel, so two accumulator sets hide the FMA latency.
    @inline(__always)
    private static func rows1(
        _ x: UnsafePointer<Float>, _ panel: UnsafePointer<Float>, k: Int, _ y: UnsafeMutablePointer<Float>,
        cols: Int, _ accumulate: Bool
    ) {
        var c0 = SIMD8<Float>()
        var c1 = SIMD8<Float>()
        var d0 = SIMD8<Float>()
        var d1 = SIMD8<Float>()
        var wp = UnsafeRawPointer(panel)
        var kk = 0
        while kk + 2 <= k {
            forklift_prefetch(wp + prefetchDistance)
            forklift_prefetch(wp + prefetchDistance + 64)
            let b0 = SIMD8<Float>(repeating: x[kk])
            c0.addProduct(b0, wp.loadUnaligned(as: SIMD8<Float>.self))
            c1.addProduct(b0, wp.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
            let b1 = SIMD8<Float>(repeating: x[kk + 1])
            d0.addProduct(b1, wp.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self))
            d1.addProduct(b1, wp.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self))
            wp += 128
            kk += 2
        }
        if kk < k {
            let b0 = SIMD8<Float>(repeating: x[kk])
            c0.addProduct(b0, wp.loadUnaligned(as: SIMD8<Float>.self))
            c1.addProduct(b0, wp.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self))
        }
        store(c0 + d0, c1 + d1, y, cols: cols, accumulate)
    }

    @inline(__always)
    private static func store(
        _ c0: SIMD8<Float>, _ c1: SIMD8<Float>, _ y: UnsafeMutablePointer<Float>, cols: Int, _ accumulate: Bool
    ) {
        if cols == width {
            let raw = UnsafeMutableRawPointer(y)
            var v0 = c0
            var v1 = c1
            if accumulate {
                v0 += raw.loadUnaligned(as: SIMD8<Float>.self)
                v1 += raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
            }
            raw.storeBytes(of: v0, as: SIMD8<Float>.self)
            raw.storeBytes(of: v1, toByteOffset: 32, as: SIMD8<Float>.self)
        } else {
            for c in 0..<cols {
                let v = c < 8 ? c0[c] : c1[c - 8]
                y[c] = accumulate ? y[c] + v : v
            }
        }
    }
}
