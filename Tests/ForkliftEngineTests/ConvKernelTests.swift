import ForkliftTestSupport
import Foundation
import Testing

@testable import ForkliftEngine

/// Conv (packed filters × input in place, or × im2col chunks) against a plain loop, at sizes
/// where the 6×16 tiles have edges: output positions not a multiple of 16, filter counts not a
/// multiple of 6, K = 1, 3, 17…, groups, strides, pads, with and without bias, Relu and Clip;
/// also with W given at run time (the sgemm path).
@Suite struct ConvKernelTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch = 2
        var channels: Int
        var filters: Int
        var inH: Int
        var inW: Int
        var kernel = 1
        var stride = 1
        var pad = 0
        var group = 1
        var bias = true
        var activation: Activation? = nil
        var constantWeight = true

        var testDescription: String {
            "n\(batch) c\(channels)→\(filters) \(inH)×\(inW) k\(kernel) s\(stride) p\(pad) g\(group)"
                + "\(bias ? " bias" : "") \(activation.map { "\($0)" } ?? "linear")\(constantWeight ? "" : " runtime W")"
        }

        var outH: Int { (inH + 2 * pad - kernel) / stride + 1 }
        var outW: Int { (inW + 2 * pad - kernel) / stride + 1 }
    }

    static let cases: [Case] = [
        // Pointwise: B is the input in place.
        Case(channels: 1, filters: 1, inH: 1, inW: 1),
        Case(channels: 3, filters: 7, inH: 5, inW: 7, activation: .relu),
        Case(channels: 17, filters: 13, inH: 3, inW: 11, bias: false, activation: .clip(min: 0, max: 6)),
        Case(channels: 16, filters: 24, inH: 4, inW: 4, activation: .clip(min: -0.5, max: 0.5)),
        Case(channels: 24, filters: 11, inH: 7, inW: 7),
        Case(channels: 40, filters: 6, inH: 6, inW: 6, bias: false),
        Case(channels: 12, filters: 10, inH: 5, inW: 5, group: 2, activation: .relu),
        Case(batch: 1, channels: 33, filters: 19, inH: 9, inW: 13, activation: .clip(min: 0, max: 6)),
        Case(channels: 1, filters: 5, inH: 9, inW: 9, activation: .relu),
        // More columns than one packed block (K = 17: 3,840 columns a block).
        Case(batch: 1, channels: 17, filters: 7, inH: 64, inW: 65),
        // K above 384: depth slices accumulate partial sums (and straddle images: 7×7).
        Case(channels: 400, filters: 13, inH: 7, inW: 7, activation: .clip(min: 0, max: 6)),
        Case(batch: 3, channels: 400, filters: 20, inH: 9, inW: 6, kernel: 1, stride: 2, activation: .relu),
        // im2col chunks: kernels, strides, pads, groups.
        Case(channels: 3, filters: 8, inH: 9, inW: 9, kernel: 3, stride: 2, pad: 1, activation: .clip(min: 0, max: 6)),
        Case(channels: 5, filters: 7, inH: 6, inW: 11, kernel: 3, pad: 1, bias: false),
        Case(channels: 4, filters: 9, inH: 10, inW: 7, kernel: 1, stride: 2, activation: .relu),
        Case(channels: 6, filters: 14, inH: 8, inW: 8, kernel: 3, stride: 1, pad: 1, group: 2),
        Case(channels: 2, filters: 5, inH: 13, inW: 5, kernel: 5, stride: 3, pad: 2, activation: .relu),
        Case(batch: 3, channels: 17, filters: 6, inH: 4, inW: 3, kernel: 2),
        // Stride 2 over rows long enough for the 16-wide even-column copy, and its scalar tail.
        Case(batch: 1, channels: 3, filters: 8, inH: 6, inW: 83, kernel: 7, stride: 2, pad: 3, activation: .relu),
        // Constant W with a spatial kernel and K above 128 stays unpacked, for sgemm.
        Case(channels: 60, filters: 7, inH: 5, inW: 6, kernel: 3, pad: 1, activation: .relu),
        // W at run time: sgemm.
        Case(channels: 17, filters: 13, inH: 3, inW: 11, activation: .relu, constantWeight: false),
        Case(channels: 3, filters: 8, inH: 9, inW: 9, kernel: 3, stride: 2, pad: 1, constantWeight: false),
    ]

    @Test(arguments: cases, [1, 2])
    func matchesPlainLoop(_ c: Case, threads: Int) throws {
        try ComputeThreads.with(threads) { try check(c, threads: threads) }
    }

    private func check(_ c: Case, threads: Int) throws {
        let groupIn = c.channels / c.group
        let groupOut = c.filters / c.group
        let k = groupIn * c.kernel * c.kernel
        var generator = SeededGenerator(seed: UInt64(c.channels * 1000 + c.filters * 10 + c.kernel))
        let x = Tensor(
            floats: (0..<(c.batch * c.channels * c.inH * c.inW)).map { _ in Float.random(in: -2...2, using: &generator) },
            shape: [c.batch, c.channels, c.inH, c.inW])
        let w = Tensor(
            floats: (0..<(c.filters * k)).map { _ in Float.random(in: -1...1, using: &generator) },
            shape: [c.filters, groupIn, c.kernel, c.kernel])
        let b = Tensor(floats: (0..<c.filters).map { _ in Float.random(in: -1...1, using: &generator) }, shape: [c.filters])
        var attributes: [String: Attribute] = [
            "kernel_shape": .ints([c.kernel, c.kernel]), "strides": .ints([c.stride, c.stride]),
            "pads": .ints([c.pad, c.pad, c.pad, c.pad]),
        ]
        if c.group > 1 { attributes["group"] = .int(c.group) }
        let node = NodeIR(
            name: "conv", opType: "Conv", domain: "", inputs: c.bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
            attributes: attributes, fusedActivation: c.activation)
        let constants: [Tensor?] = c.constantWeight ? [nil, w, c.bias ? b : nil] : [nil, nil, nil]
        let kernel = try ConvKernel.make(NodeContext(node: node, opset: 13, constants: Array(constants.prefix(node.inputs.count))))
        let inputs = c.bias ? [x, w, b] : [x, w]
        let type = try kernel.outputTypes(inputs.map(\.type), values: inputs)[0]
        #expect(type.shape == [c.batch, c.filters, c.outH, c.outW])
        let y = Tensor(dtype: .float32, shape: type.shape)
        for i in 0..<y.count { y.floats[i] = .nan }
        try kernel.run(inputs, [y])

        let (low, high) = c.activation?.bounds ?? (-Float.infinity, Float.infinity)
        var worst: Float = 0
        for n in 0..<c.batch {
            for m in 0..<c.filters {
                let g = m / groupOut
                for oh in 0..<c.outH {
                    for ow in 0..<c.outW {
                        var sum: Float = c.bias ? b.floats[m] : 0
                        for ci in 0..<groupIn {
                            for kh in 0..<c.kernel {
                                for kw in 0..<c.kernel {
                                    let ih = oh * c.stride - c.pad + kh
                                    let iw = ow * c.stride - c.pad + kw
                                    guard ih >= 0, ih < c.inH, iw >= 0, iw < c.inW else { continue }
                                    let channel = g * groupIn + ci
                                    sum +=
                                        w.floats[((m * groupIn + ci) * c.kernel + kh) * c.kernel + kw]
                                        * x.floats[((n * c.channels + channel) * c.inH + ih) * c.inW + iw]
                                }
                            }
                        }
                        let expected = min(max(sum, low), high)
                        let actual = y.floats[((n * c.filters + m) * c.outH + oh) * c.outW + ow]
                        let error = abs(actual - expected)
                        worst = max(worst, error.isNaN ? .infinity : error)
                    }
                }
            }
        }
        #expect(worst <= 1e-3, "\(c.testDescription), \(threads) thread(s): max error \(worst)")
    }
}
