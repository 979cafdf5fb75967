import ForkliftTestSupport
import Foundation
import Testing

@testable import ForkliftEngine

/// The packed-weight product (`PackedWeights` over `PanelKernel`) against a plain loop in double
/// precision, at row counts that take every microkernel (eight-row and 2–11-row AVX-512, four-row
/// and one-row) and their remainders, column counts around the 16-wide panel, and panel splits across threads.
@Suite struct PanelKernelTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var m: Int
        var n: Int
        var k: Int
        var testDescription: String { "M \(m) N \(n) K \(k)" }
    }

    static let cases: [Case] = [
        Case(m: 1, n: 1, k: 1), Case(m: 1, n: 17, k: 300), Case(m: 3, n: 16, k: 7), Case(m: 4, n: 15, k: 64),
        Case(m: 5, n: 33, k: 130), Case(m: 8, n: 16, k: 1), Case(m: 8, n: 40, k: 257), Case(m: 9, n: 31, k: 65),
        Case(m: 13, n: 64, k: 33), Case(m: 17, n: 200, k: 160), Case(m: 70, n: 48, k: 20), Case(m: 33, n: 200, k: 300),
        // Every count of rows left after the eight-row passes, from 2 to 11, in one pass.
        Case(m: 2, n: 20, k: 9), Case(m: 6, n: 16, k: 70), Case(m: 7, n: 33, k: 5), Case(m: 10, n: 17, k: 64),
        Case(m: 11, n: 48, k: 100), Case(m: 12, n: 31, k: 3), Case(m: 15, n: 16, k: 129), Case(m: 19, n: 50, k: 40),
        Case(m: 27, n: 16, k: 16),
    ]

    static func values(_ count: Int, using generator: inout SeededGenerator) -> [Float] {
        (0..<count).map { _ in Float.random(in: -1...1, using: &generator) }
    }

    @Test(arguments: cases, [1, 2])
    func matchesPlainLoop(_ c: Case, threads: Int) throws {
        try ComputeThreads.with(threads) { try check(c, threads: threads) }
    }

    private func check(_ c: Case, threads: Int) throws {
        var generator = SeededGenerator(seed: UInt64(c.m * 1_000_000 + c.n * 1000 + c.k))
        let x = Self.values(c.m * c.k, using: &generator)
        let w = Self.values(c.k * c.n, using: &generator)
        let bias = Self.values(c.n, using: &generator)
        let initial = Self.values(c.m * c.n, using: &generator)
        let alpha: Float = 0.5
        let weights = Tensor(dtype: .float32, shape: [c.k, c.n])
        weights.floats.update(from: w, count: w.count)
        let packed = try #require(PackedWeights(weights, transposed: false, alpha: alpha))

        // The AVX2 kernels run here only when asked for: this machine takes the AVX-512 ones.
        let variants: [(accumulate: Bool, activation: Activation?, wide: Bool)] = [
            (false, nil, CPUFeatures.hasAVX512), (true, .clip(min: -0.5, max: 0.75), CPUFeatures.hasAVX512),
            (true, .relu, false),
        ]
        for (accumulate, activation, wide) in variants {
            var y = initial
            x.withUnsafeBufferPointer { xp in
                bias.withUnsafeBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { yp in
                        PanelKernel.multiply(
                            xp.baseAddress!, ldx: c.k, m: c.m, panels: packed.storage.floats, n: c.n, k: c.k, yp.baseAddress!,
                            accumulate: accumulate, epilogue: Epilogue(bias: bp.baseAddress, activation: activation), wide: wide)
                    }
                }
            }
            let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
            var worst: Double = 0
            for i in 0..<c.m {
                for j in 0..<c.n {
                    var sum = accumulate ? Double(initial[i * c.n + j]) : 0
                    for kk in 0..<c.k { sum += Double(alpha) * Double(x[i * c.k + kk]) * Double(w[kk * c.n + j]) }
                    sum += Double(bias[j])
                    let expected = min(max(sum, Double(low)), Double(high))
                    let error = abs(Double(y[i * c.n + j]) - expected)
                    worst = max(worst, error.isNaN ? .infinity : error)
                }
            }
            #expect(worst <= 1e-4, "\(c.testDescription), accumulate \(accumulate), wide \(wide), \(threads) thread(s): max error \(worst)")
        }
    }
}
