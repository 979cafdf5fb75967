import Foundation
import Testing

@testable import ForkliftEngine

/// The engine's compute-thread count is process-wide, and Swift Testing runs tests in parallel:
/// tests that set it take turns here, so that a case run at 2 threads really has 2 (and one at
/// 1 thread, 1) while it runs.
enum ComputeThreads {
    private static let lock = NSLock()

    static func with<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        let previous = BLAS.threads
        BLAS.setThreads(count)
        defer { BLAS.setThreads(previous) }
        return try body()
    }
}

/// The `wide` values a kernel test runs: the AVX2 kernels always, the AVX-512 ones where this
/// CPU has it.
let kernelVariants = CPUFeatures.hasAVX512 ? [false, true] : [false]

/// Paths of the repository and of what `scripts/make-models` builds.
enum Fixtures {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let cache = root.appendingPathComponent(".cache")

    static func model(_ name: String) -> URL {
        name == "digits"
            ? root.appendingPathComponent("models/digits/model.onnx")
            : cache.appendingPathComponent("models/\(name)/model.onnx")
    }

    static func reference(_ model: String, _ file: String) throws -> Tensor {
        let url = cache.appendingPathComponent("reference/\(model)/\(file)")
        let data = try #require(FileManager.default.contents(atPath: url.path), "missing \(url.path): run scripts/make-models")
        return try NPY.read(data)
    }

    /// max |a − e| / max |e|: the error relative to the output's scale.
    static func relativeError(_ actual: Tensor, _ expected: Tensor) -> Double {
        let a = actual.doubles()
        let e = expected.doubles()
        let scale = e.map(abs).max() ?? 1
        return zip(a, e).map { abs($0 - $1) }.max().map { $0 / max(scale, 1e-12) } ?? 0
    }
}
