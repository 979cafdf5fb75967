import COpenBLAS
import Foundation

/// Row-major single-precision GEMM through OpenBLAS: C = alpha·op(A)·op(B) + beta·C.
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
        cblas_sgemm(
            CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
            blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(ldc))
    }
}
