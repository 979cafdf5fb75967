import ForkliftTestSupport
import Testing

@testable import ForkliftEngine

/// Winograd F(2×2, 3×3) convolutions against the im2col + sgemm path (W given at run time,
/// which `ConvKernelTests` checks against a plain loop), at sizes that put edges everywhere: odd
/// output sizes (half tiles), tile rows longer than a 16-lane segment, blocks and panels that
/// end mid-row or span images, filter counts that are not a multiple of 8, asymmetric pads.
@Suite struct WinogradTests {
    struct Case: CustomTestStringConvertible, Sendable {
        var batch = 2
        var channels: Int
        var filters: Int
        var inH: Int
        var inW: Int
        /// top, left, bottom, right
        var pads = [1, 1, 1, 1]
        var bias = true
        var activation: Activation? = nil

        var testDescription: String {
            "n\(batch) c\(channels)→\(filters) \(inH)×\(inW) pads \(pads)\(bias ? " bias" : "") \(activation.map { "\($0)" } ?? "linear")"
        }
    }

    static let cases: [Case] = [
        Case(channels: 16, filters: 8, inH: 8, inW: 8),
        Case(batch: 1, channels: 16, filters: 1, inH: 1, inW: 1, activation: .relu),
        Case(channels: 17, filters: 13, inH: 7, inW: 7, activation: .relu),
        Case(batch: 3, channels: 24, filters: 24, inH: 14, inW: 14, bias: false, activation: .clip(min: -0.5, max: 0.5)),
        Case(batch: 1, channels: 16, filters: 9, inH: 5, inW: 40),
        Case(channels: 20, filters: 16, inH: 11, inW: 37, pads: [0, 0, 0, 0], activation: .relu),
        Case(batch: 1, channels: 16, filters: 8, inH: 9, inW: 6, pads: [0, 1, 2, 0]),
        Case(batch: 2, channels: 16, filters: 8, inH: 3, inW: 3, pads: [2, 2, 2, 2], bias: false),
        Case(batch: 1, channels: 32, filters: 40, inH: 29, inW: 29, activation: .clip(min: 0, max: 6)),
        // One block at 2 threads: the threads share its product by panels of filters.
        Case(batch: 1, channels: 32, filters: 40, inH: 7, inW: 8, activation: .relu),
        // More tiles than one block (Cin 64: 256 tiles a block at 1 thread).
        Case(batch: 2, channels: 64, filters: 16, inH: 30, inW: 34, activation: .relu),
    ]

    /// W and B of a case, the same on every call.
    private static func parameters(_ c: Case) -> (w: Tensor, b: Tensor) {
        var generator = SeededGenerator(seed: UInt64(c.channels * 97 + c.filters))
        let w = Tensor(
            floats: (0..<(c.filters * c.channels * 9)).map { _ in Float.random(in: -1...1, using: &generator) },
            shape: [c.filters, c.channels, 3, 3])
        let b = Tensor(floats: (0..<c.filters).map { _ in Float.random(in: -1...1, using: &generator) }, shape: [c.filters])
        return (w, b)
    }

    /// The Conv kernel of a case, with W and B as load-time constants or given at run time.
    private static func conv(_ c: Case, constants: (w: Tensor, b: Tensor)?) throws -> ConvKernel {
        let node = NodeIR(
            name: "conv", opType: "Conv", domain: "", inputs: c.bias ? ["x", "w", "b"] : ["x", "w"], outputs: ["y"],
            attributes: ["kernel_shape": .ints([3, 3]), "pads": .ints(c.pads)], fusedActivation: c.activation)
        let values: [Tensor?] = [nil, constants?.w, c.bias ? constants?.b : nil]
        let context = NodeContext(node: node, opset: 13, constants: Array(values.prefix(node.inputs.count)))
        guard let kernel = try ConvKernel.make(context) as? ConvKernel else { throw KernelError.invalid("not a ConvKernel") }
        return kernel
    }

    @Test(arguments: cases, [1, 2])
    func matchesIm2col(_ c: Case, threads: Int) throws {
        try ComputeThreads.with(threads) { try check(c, threads: threads) }
    }

    private func check(_ c: Case, threads: Int) throws {
        var generator = SeededGenerator(seed: UInt64(c.inH * 1000 + c.inW))
        let x = Tensor(
            floats: (0..<(c.batch * c.channels * c.inH * c.inW)).map { _ in Float.random(in: -2...2, using: &generator) },
            shape: [c.batch, c.channels, c.inH, c.inW])
        let (w, b) = Self.parameters(c)
        let winograd = try Self.conv(c, constants: (w, b))
        let reference = try Self.conv(c, constants: nil)
        #expect(
            (winograd.winograd != nil) == CPUFeatures.hasAVX512,
            "a 3×3 stride-1 convolution with \(c.channels) channels takes the Winograd path where AVX-512 runs")
        let inputs = c.bias ? [x, w, b] : [x, w]
        let type = try reference.outputTypes(inputs.map(\.type), values: inputs)[0]
        let expected = Tensor(dtype: .float32, shape: type.shape)
        try reference.run(inputs, [expected])
        let actual = Tensor(dtype: .float32, shape: type.shape)
        for i in 0..<actual.count { actual.floats[i] = .nan }
        // The Winograd kernel never reads W (absorbed), only X and B.
        try winograd.run(inputs, [actual])
        var worst: Float = 0
        for i in 0..<actual.count {
            let error = abs(actual.floats[i] - expected.floats[i])
            worst = max(worst, error.isNaN ? .infinity : error)
        }
        #expect(worst <= 1e-3, "\(c.testDescription), \(threads) thread(s): max error \(worst)")
    }

    @Test func declinesOtherConvolutions() throws {
        var generator = SeededGenerator(seed: 7)
        func weight(_ shape: [Int]) -> Tensor {
            Tensor(floats: (0..<shape.reduce(1, *)).map { _ in Float.random(in: -1...1, using: &generator) }, shape: shape)
        }
        func window(_ attributes: [String: Attribute]) throws -> WindowAttributes {
            let node = NodeIR(
                name: "conv", opType: "Conv", domain: "", inputs: ["x", "w"], outputs: ["y"], attributes: attributes,
                fusedActivation: nil)
            return try WindowAttributes(NodeContext(node: node, opset: 13, constants: [nil, nil]))
        }
        let plain = try window([:])
        #expect(WinogradFilters.applies(to: weight([8, 16, 3, 3]), group: 1, window: plain) == CPUFeatures.hasAVX512)
        // The transformed-filter cap: 256×256 filters take 4 MiB, 264×256 more.
        #expect(WinogradFilters.applies(to: weight([256, 256, 3, 3]), group: 1, window: plain) == CPUFeatures.hasAVX512)
        #expect(!WinogradFilters.applies(to: weight([264, 256, 3, 3]), group: 1, window: plain))
        #expect(!WinogradFilters.applies(to: weight([8, 16, 3, 3]), group: 1, window: try window(["strides": .ints([2, 2])])))
        #expect(!WinogradFilters.applies(to: weight([8, 16, 3, 3]), group: 1, window: try window(["dilations": .ints([2, 2])])))
        #expect(!WinogradFilters.applies(to: weight([8, 8, 3, 3]), group: 2, window: plain))
        #expect(!WinogradFilters.applies(to: weight([8, 8, 3, 3]), group: 1, window: plain))
        #expect(!WinogradFilters.applies(to: weight([8, 16, 1, 1]), group: 1, window: plain))
        #expect(!WinogradFilters.applies(to: weight([8, 16, 5, 5]), group: 1, window: plain))
        #expect(!WinogradFilters.applies(to: weight([8, 16, 3, 3, 3]), group: 1, window: plain))
    }
}
