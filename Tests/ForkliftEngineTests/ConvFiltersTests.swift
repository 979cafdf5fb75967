import ForkliftTestSupport
import Foundation
import Testing

@testable import ForkliftEngine

/// The packed-filter product (`ConvFilters.multiply`) against a plain loop in double precision,
/// with the AVX2 tile and, where this CPU has it, the AVX-512 one: filter counts around the
/// 6-row panel, positions around the 16-column tile and the 64-column AVX-512 run, tiles that
/// straddle two images, edge tiles of 1 to 8 columns in one image (the AVX-512 narrow kernel),
/// K above one depth slice (partial sums), and one and two threads.
@Suite struct ConvFiltersTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var filters: Int
        var channels: Int
        var positions: Int
        var images: Int
        var testDescription: String { "M \(filters) K \(channels) \(images)×\(positions) positions" }
    }

    static let cases: [Case] = [
        Case(filters: 1, channels: 1, positions: 1, images: 1), Case(filters: 6, channels: 16, positions: 64, images: 1),
        Case(filters: 13, channels: 17, positions: 49, images: 1), Case(filters: 7, channels: 24, positions: 49, images: 3),
        Case(filters: 20, channels: 5, positions: 200, images: 1), Case(filters: 18, channels: 40, positions: 196, images: 2),
        Case(filters: 12, channels: 400, positions: 50, images: 2), Case(filters: 25, channels: 770, positions: 81, images: 1),
        Case(filters: 24, channels: 3, positions: 1000, images: 2),
        // Edge tiles of 2 to 6 columns in one image: the AVX-512 narrow kernel's other widths.
        Case(filters: 9, channels: 30, positions: 196, images: 1), Case(filters: 11, channels: 7, positions: 35, images: 1),
        Case(filters: 6, channels: 13, positions: 18, images: 1), Case(filters: 5, channels: 9, positions: 6, images: 1),
        // One image read in place, with a last tile of 9–15 columns (packed on its own).
        Case(filters: 7, channels: 21, positions: 28, images: 1), Case(filters: 13, channels: 50, positions: 300, images: 1),
    ]

    @Test(arguments: cases, [1, 2])
    func matchesPlainLoop(_ c: Case, threads: Int) throws {
        try ComputeThreads.with(threads) { try check(c, threads: threads) }
    }

    private func check(_ c: Case, threads: Int) throws {
        var generator = SeededGenerator(seed: UInt64(c.filters * 1_000_000 + c.channels * 1000 + c.positions))
        let x = (0..<(c.images * c.channels * c.positions)).map { _ in Float.random(in: -1...1, using: &generator) }
        let w = (0..<(c.filters * c.channels)).map { _ in Float.random(in: -1...1, using: &generator) }
        let bias = (0..<c.filters).map { _ in Float.random(in: -1...1, using: &generator) }
        let weights = Tensor(dtype: .float32, shape: [c.filters, c.channels, 1, 1])
        weights.floats.update(from: w, count: w.count)
        let filters = try #require(ConvFilters(weights, group: 1))

        let activations: [Activation?] = [nil, .clip(min: -0.5, max: 0.75)]
        for wide in kernelVariants {
            for activation in activations {
                var y = [Float](repeating: .nan, count: c.images * c.filters * c.positions)
                x.withUnsafeBufferPointer { xp in
                    bias.withUnsafeBufferPointer { bp in
                        y.withUnsafeMutableBufferPointer { yp in
                            let space = ColumnSpace(
                                b: xp.baseAddress!, ldb: c.positions, bImage: c.channels * c.positions, y: yp.baseAddress!,
                                ldy: c.positions, yImage: c.filters * c.positions, perImage: c.positions, images: c.images)
                            filters.multiply(group: 0, space, bias: bp.baseAddress, activation: activation, wide: wide)
                        }
                    }
                }
                let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
                var worst: Double = 0
                for n in 0..<c.images {
                    for m in 0..<c.filters {
                        for j in 0..<c.positions {
                            var sum = Double(bias[m])
                            for k in 0..<c.channels {
                                sum += Double(w[m * c.channels + k]) * Double(x[(n * c.channels + k) * c.positions + j])
                            }
                            let expected = min(max(sum, Double(low)), Double(high))
                            let error = abs(Double(y[(n * c.filters + m) * c.positions + j]) - expected)
                            worst = max(worst, error.isNaN ? .infinity : error)
                        }
                    }
                }
                let variant = "wide \(wide), \(activation.map { "\($0)" } ?? "linear"), \(threads) thread(s)"
                #expect(worst <= 1e-4, "\(c.testDescription), \(variant): max error \(worst)")
            }
        }
    }
}
