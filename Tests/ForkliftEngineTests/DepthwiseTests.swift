import ForkliftTestSupport
import Foundation
import Testing

@testable import ForkliftEngine

/// The depthwise kernels against a plain loop, over the shapes where their tiling has edges:
/// planes narrower and shorter than a tile, rows that are not a multiple of four or eight,
/// strides 1–3, asymmetric (TensorFlow "same") padding, dilation, channel multipliers.
@Suite struct DepthwiseTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var inH: Int
        var inW: Int
        var kernel: Int
        var stride: Int
        var padBegin: (Int, Int) = (0, 0)
        var padEnd: (Int, Int) = (0, 0)
        var dilation = 1
        var multiplier = 1
        var activation: Activation? = .clip(min: 0, max: 6)

        var testDescription: String {
            "\(inH)×\(inW) k\(kernel) s\(stride) pads \(padBegin)/\(padEnd) d\(dilation) ×\(multiplier) \(activation.map { "\($0)" } ?? "linear")"
        }

        var window: Window {
            var w = Window()
            w.spatialRank = 2
            w.input = SIMD3(1, inH, inW)
            w.kernel = SIMD3(1, kernel, kernel)
            w.stride = SIMD3(1, stride, stride)
            w.dilation = SIMD3(1, dilation, dilation)
            w.padBegin = SIMD3(0, padBegin.0, padBegin.1)
            w.padEnd = SIMD3(0, padEnd.0, padEnd.1)
            let extent = (kernel - 1) * dilation + 1
            w.output = SIMD3(1, (inH + padBegin.0 + padEnd.0 - extent) / stride + 1, (inW + padBegin.1 + padEnd.1 - extent) / stride + 1)
            return w
        }
    }

    /// TensorFlow "same" padding for a square input, as the EfficientNet graph writes it.
    static func same(_ size: Int, _ kernel: Int, _ stride: Int, multiplier: Int = 1) -> Case {
        let out = (size + stride - 1) / stride
        let total = max((out - 1) * stride + kernel - size, 0)
        return Case(
            inH: size, inW: size, kernel: kernel, stride: stride, padBegin: (total / 2, total / 2),
            padEnd: (total - total / 2, total - total / 2), multiplier: multiplier)
    }

    static let cases: [Case] = [
        // EfficientNet-Lite0's depthwise layers (spatial sizes; channels do not change the tiling).
        same(112, 3, 1), same(112, 3, 2), same(56, 3, 1), same(56, 5, 2), same(28, 5, 1), same(28, 3, 2),
        same(14, 3, 1), same(14, 5, 1), same(14, 5, 2), same(7, 5, 1), same(7, 3, 1),
        // Narrow and short planes: one partial column tile, fewer rows than a tile, odd sizes.
        Case(inH: 1, inW: 1, kernel: 1, stride: 1),
        Case(inH: 3, inW: 2, kernel: 3, stride: 1, padBegin: (1, 1), padEnd: (1, 1)),
        Case(inH: 5, inW: 3, kernel: 3, stride: 1, padBegin: (1, 1), padEnd: (1, 1), activation: nil),
        Case(inH: 9, inW: 9, kernel: 3, stride: 1, padBegin: (1, 1), padEnd: (1, 1)),
        Case(inH: 6, inW: 17, kernel: 5, stride: 1, padBegin: (2, 2), padEnd: (2, 2), activation: .relu),
        Case(inH: 11, inW: 10, kernel: 5, stride: 2, padBegin: (1, 2), padEnd: (2, 1)),
        Case(inH: 13, inW: 4, kernel: 3, stride: 3, padBegin: (0, 1), padEnd: (2, 2), activation: nil),
        Case(inH: 8, inW: 8, kernel: 3, stride: 2, padBegin: (0, 0), padEnd: (1, 1)),
        Case(inH: 10, inW: 12, kernel: 3, stride: 1, padBegin: (2, 2), padEnd: (2, 2), dilation: 2),
        Case(inH: 7, inW: 9, kernel: 3, stride: 2, padBegin: (1, 1), padEnd: (1, 1), multiplier: 3),
        Case(inH: 1, inW: 30, kernel: 1, stride: 1, activation: nil),
        Case(inH: 20, inW: 20, kernel: 7, stride: 1, padBegin: (3, 3), padEnd: (3, 3)),
        // Stride 5: the general (non-phase) loop.
        Case(inH: 12, inW: 12, kernel: 5, stride: 5, padBegin: (1, 1), padEnd: (2, 2)),
        // The AVX-512 kernels: rows past one vector with a masked tail, fewer rows than a tile,
        // stride 2 with odd and even left pads (which phase the even columns land in), a plane
        // smaller than the kernel's reach.
        Case(inH: 3, inW: 40, kernel: 3, stride: 1, padBegin: (1, 1), padEnd: (1, 1)),
        Case(inH: 9, inW: 33, kernel: 5, stride: 2, padBegin: (2, 2), padEnd: (2, 2), activation: nil),
        Case(inH: 10, inW: 35, kernel: 3, stride: 2, padBegin: (1, 1), padEnd: (0, 0)),
        Case(inH: 2, inW: 2, kernel: 5, stride: 1, padBegin: (2, 2), padEnd: (2, 2)),
        Case(inH: 21, inW: 50, kernel: 5, stride: 1, padBegin: (2, 2), padEnd: (2, 2), activation: .relu),
        // 3×3 stride 1 straight from the input (AVX-512): pads on one side only, rows past one
        // vector, a channel multiplier.
        Case(inH: 6, inW: 19, kernel: 3, stride: 1, padBegin: (0, 2), padEnd: (2, 0), multiplier: 2),
        Case(inH: 13, inW: 33, kernel: 3, stride: 1, padBegin: (2, 0), padEnd: (0, 2), activation: nil),
    ]

    @Test(arguments: cases, [1, 2])
    func matchesPlainLoop(_ c: Case, threads: Int) {
        ComputeThreads.with(threads) {
            for wide in kernelVariants { check(c, threads: threads, wide: wide) }
        }
    }

    func check(_ c: Case, threads: Int, wide: Bool) {
        let (batch, channels) = (2, 5)
        let w = c.window
        let filters = channels * c.multiplier
        let outH = w.output[1]
        let outW = w.output[2]
        var generator = SeededGenerator(seed: UInt64(c.inH * 1000 + c.inW * 10 + c.kernel))
        let x = (0..<(batch * channels * c.inH * c.inW)).map { _ in Float.random(in: -2...2, using: &generator) }
        let weight = (0..<(filters * c.kernel * c.kernel)).map { _ in Float.random(in: -1...1, using: &generator) }
        let bias = (0..<filters).map { _ in Float.random(in: -1...1, using: &generator) }
        var y = [Float](repeating: .nan, count: batch * filters * outH * outW)

        var xs = x
        var ws = weight
        var bs = bias
        xs.withUnsafeMutableBufferPointer { xp in
            ws.withUnsafeMutableBufferPointer { wp in
                bs.withUnsafeMutableBufferPointer { bp in
                    y.withUnsafeMutableBufferPointer { yp in
                        Depthwise.run(
                            x: xp.baseAddress!, weight: wp.baseAddress!, bias: bp.baseAddress!, y: yp.baseAddress!, batch: batch,
                            channels: channels, multiplier: c.multiplier, window: w, activation: c.activation, wide: wide)
                    }
                }
            }
        }

        let (low, high) = c.activation?.bounds ?? (-Float.infinity, Float.infinity)
        var worst: Float = 0
        for n in 0..<batch {
            for m in 0..<filters {
                let plane = x[((n * channels + m / c.multiplier) * c.inH * c.inW)...]
                for oh in 0..<outH {
                    for ow in 0..<outW {
                        var sum = bias[m]
                        for kh in 0..<c.kernel {
                            for kw in 0..<c.kernel {
                                let ih = oh * c.stride - c.padBegin.0 + kh * c.dilation
                                let iw = ow * c.stride - c.padBegin.1 + kw * c.dilation
                                guard ih >= 0, ih < c.inH, iw >= 0, iw < c.inW else { continue }
                                sum += weight[(m * c.kernel + kh) * c.kernel + kw] * plane[plane.startIndex + ih * c.inW + iw]
                            }
                        }
                        let expected = min(max(sum, low), high)
                        let actual = y[((n * filters + m) * outH + oh) * outW + ow]
                        worst = max(worst, abs(actual - expected).isNaN ? .infinity : abs(actual - expected))
                    }
                }
            }
        }
        #expect(worst <= 1e-4, "\(c.testDescription), \(threads) thread(s), wide \(wide): max error \(worst)")
    }
}
