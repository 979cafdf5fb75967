import COpenBLAS

/// The compute threads of the process: OpenBLAS's pool (for the products that still go through
/// `cblas_sgemm`) and the engine's own `ParallelPool` (packed GEMM and convolution) use the same count.
public enum BLAS {
    public static func setThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
        ParallelPool.shared.threads = count
    }

    public static var threads: Int { ParallelPool.shared.threads }
}
