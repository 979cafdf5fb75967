import COpenBLAS
import Foundation

/// Row-major single-precision GEMM through OpenBLAS: C = alpha·op(A)·op(B) + beta·C, cut into
/// slices of C that `ParallelPool` runs in parallel (OpenBLAS itself stays on one thread: `BLAS`).
enum LinearBLAS {
    /// Largest dimension that OpenBLAS's 32-bit `blasint` can carry.
    static let maxDimension = Int(Int32.max)

    /// Throws when a product dimension does not fit in `blasint`, so that the call cannot truncate.
    static func checkDimensions(_ dims: Int...) throws(KernelError) {
        for dim in dims where dim > maxDimension {
            throw .unsupported("matrix dimension \(dim) exceeds \(maxDimension)")
        }
    }

    static func sgemm(
        transA: Bool, transB: Bool, m: Int, n: Int, k: Int, alpha: Float,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        beta: Float, c: UnsafeMutablePointer<Float>, ldc: Int
    ) {
        guard m > 0, n > 0 else { return }
        guard k > 0 else {
            // An empty inner dimension leaves beta·C; some OpenBLAS builds skip the scaling then.
            for row in 0..<m {
                let out = c + row * ldc
                if beta == 0 {
                    for j in 0..<n { out[j] = 0 }
                } else if beta != 1 {
                    for j in 0..<n { out[j] *= beta }
                }
            }
            return
        }
        let (opA, opB) = (transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans)
        let threads = ParallelPool.shared.threads
        // In Double: three dimensions that each fit blasint can overflow Int when multiplied.
        guard threads > 1, Double(m) * Double(n) * Double(k) >= Double(Self.minParallelWork) else {
            cblas_sgemm(
                CblasRowMajor, opA, opB, blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c,
                blasint(ldc))
            return
        }
        // One part per thread, each a single-threaded sgemm over a slice of C. Each part packs
        // the whole of the operand it does not slice, so slice the larger of M and N.
        let byColumns = n >= m
        let (length, align) = byColumns ? (n, 16) : (m, 8)
        let step = ((length + threads - 1) / threads + align - 1) / align * align
        let parts = (length + step - 1) / step
        ParallelPool.shared.forEachChunk(count: parts, parts: parts) { range in
            for part in range {
                let lower = part * step
                let count = min(step, length - lower)
                if byColumns {
                    let slicedB = transB ? b + lower * ldb : b + lower
                    cblas_sgemm(
                        CblasRowMajor, opA, opB, blasint(m), blasint(count), blasint(k), alpha, a, blasint(lda), slicedB,
                        blasint(ldb), beta, c + lower, blasint(ldc))
                } else {
                    let slicedA = transA ? a + lower : a + lower * lda
                    cblas_sgemm(
                        CblasRowMajor, opA, opB, blasint(count), blasint(n), blasint(k), alpha, slicedA, blasint(lda), b,
                        blasint(ldb), beta, c + lower * ldc, blasint(ldc))
                }
            }
        }
    }

    /// Multiply-adds below which a product stays on one thread: about 0.1 ms of work.
    static let minParallelWork = 1 << 22
}
