import COpenBLAS

/// The compute threads of the process: the engine's own `ParallelPool` runs every parallel
/// kernel, the products that go through `cblas_sgemm` included (`LinearBLAS.sgemm` cuts them
/// into slices, one single-threaded sgemm each). OpenBLAS keeps one thread: its idle threads
/// poll with `sched_yield` for a long while after each call, and on two cores they took the
/// pool's core between products (ResNet-18 at 2 threads scaled 1.6× over 1 thread, onnxruntime 2×).
public enum BLAS {
    public static func setThreads(_ count: Int) {
        ParallelPool.shared.threads = count
    }

    public static var threads: Int { ParallelPool.shared.threads }
}
