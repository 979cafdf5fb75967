import ForkliftTestSupport
import Testing

@testable import ForkliftEngine

/// `LinearBLAS.sgemm` at 2 threads, where it cuts C into slices of rows or columns, one
/// single-threaded sgemm each, against the same product on one thread: every transpose
/// combination, slices that do not divide evenly, leading dimensions wider than the matrices,
/// and beta ≠ 0 (each slice must scale only its own part of C).
@Suite struct SlicedGemmTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var m: Int
        var n: Int
        var k: Int
        var transA: Bool
        var transB: Bool
        var beta: Float
        var testDescription: String { "M \(m) N \(n) K \(k)\(transA ? " Aᵀ" : "")\(transB ? " Bᵀ" : "") beta \(beta)" }
    }

    static let cases: [Case] = [
        Case(m: 64, n: 333, k: 257, transA: false, transB: false, beta: 0),
        Case(m: 64, n: 333, k: 257, transA: true, transB: true, beta: 0.5),
        Case(m: 301, n: 40, k: 400, transA: false, transB: true, beta: 1),
        Case(m: 301, n: 40, k: 400, transA: true, transB: false, beta: 0),
    ]

    @Test(arguments: cases)
    func slicesMatchOneThread(_ c: Case) {
        #expect(c.m * c.n * c.k >= LinearBLAS.minParallelWork, "large enough to be sliced")
        var generator = SeededGenerator(seed: UInt64(c.m * 1000 + c.n))
        // Stored shapes, one padding column each so that the leading dimensions matter.
        let (rowsA, colsA) = c.transA ? (c.k, c.m) : (c.m, c.k)
        let (rowsB, colsB) = c.transB ? (c.n, c.k) : (c.k, c.n)
        let (lda, ldb, ldc) = (colsA + 1, colsB + 1, c.n + 1)
        let a = PanelKernelTests.values(rowsA * lda, using: &generator)
        let b = PanelKernelTests.values(rowsB * ldb, using: &generator)
        let initial = PanelKernelTests.values(c.m * ldc, using: &generator)

        func product(threads: Int) -> [Float] {
            ComputeThreads.with(threads) {
                var out = initial
                out.withUnsafeMutableBufferPointer { out in
                    guard let outBase = out.baseAddress else { return }
                    LinearBLAS.sgemm(
                        transA: c.transA, transB: c.transB, m: c.m, n: c.n, k: c.k, alpha: 0.75, a: a, lda: lda, b: b, ldb: ldb,
                        beta: c.beta, c: outBase, ldc: ldc)
                }
                return out
            }
        }
        let single = product(threads: 1)
        let sliced = product(threads: 2)
        var worst: Float = 0
        for i in 0..<single.count { worst = max(worst, abs(single[i] - sliced[i])) }
        #expect(worst <= 1e-4, "\(c.testDescription): max difference \(worst)")
        // The padding column of C is never written.
        #expect((0..<c.m).allSatisfy { sliced[$0 * ldc + c.n] == initial[$0 * ldc + c.n] })
    }
}
