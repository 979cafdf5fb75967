import Foundation

/// Inference BatchNormalization over float32: y = x·s[c] + t[c] with s = γ/√(σ²+ε) and
/// t = β − μ·s, computed once at load when the four parameters are constant.
struct BatchNormKernel: Kernel {
    let epsilon: Float
    /// Scale and shift per channel when the parameters are constant.
    let affine: (scale: [Float], shift: [Float])?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 5...5, outputs: 1...1)
        try ctx.allowAttributes(["consumed_inputs", "epsilon", "is_test", "momentum", "spatial", "training_mode"])
        if try ctx.int("training_mode", default: 0) != 0 { throw .unsupported("attribute 'training_mode' = 1") }
        if ctx.opset < 9, try ctx.int("spatial", default: 1) == 0 { throw .unsupported("attribute 'spatial' = 0") }
        let epsilon = try ctx.float("epsilon", default: 1e-5)
        var affine: (scale: [Float], shift: [Float])? = nil
        let constants = (1...4).compactMap { ctx.constant($0) }
        if constants.count == 4,
            constants.allSatisfy({ $0.dtype == .float32 && $0.rank == 1 && $0.count == constants[0].count })
        {
            affine = Self.fold(
                scale: constants[0].floats, bias: constants[1].floats, mean: constants[2].floats, variance: constants[3].floats,
                count: constants[0].count, epsilon: epsilon)
        }
        return BatchNormKernel(epsilon: epsilon, affine: affine)
    }

    private static func fold(
        scale: UnsafePointer<Float>, bias: UnsafePointer<Float>, mean: UnsafePointer<Float>, variance: UnsafePointer<Float>, count: Int,
        epsilon: Float
    ) -> ([Float], [Float]) {
        var s = [Float](repeating: 0, count: count)
        var t = [Float](repeating: 0, count: count)
        for c in 0..<count {
            s[c] = scale[c] / (variance[c] + epsilon).squareRoot()
            t[c] = bias[c] - mean[c] * s[c]
        }
        return (s, t)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        guard inputs.count == 5 else { throw .invalid("expects 5 inputs, has \(inputs.count)") }
        let x = inputs[0]
        try x.require([.float32], "input X")
        guard x.shape.count >= 2 else { throw .invalid("input X has shape \(Shape.describe(x.shape)); expected rank ≥ 2") }
        let channels = x.shape[1]
        for (index, name) in [(1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")] {
            try inputs[index].require([.float32], "input \(name)")
            guard inputs[index].shape == [channels] else {
                throw .invalid(
                    "input \(name) has shape \(Shape.describe(inputs[index].shape)); expected [\(channels)] for X \(Shape.describe(x.shape))"
                )
            }
        }
        return [x]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 2 * (inputs.first?.shape.reduce(1, *) ?? 0) }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        _ = try outputTypes(inputs.map(\.type), values: [])
        let x = inputs[0]
        let channels = x.shape[1]
        let (scale, shift) =
            affine
            ?? Self.fold(
                scale: inputs[1].floats, bias: inputs[2].floats, mean: inputs[3].floats, variance: inputs[4].floats, count: channels,
                epsilon: epsilon)
        let volume = x.shape.dropFirst(2).reduce(1, *)
        let planes = x.shape[0] * channels
        let source = x.floats
        let y = outputs[0].floats
        scale.withUnsafeBufferPointer { scale in
            shift.withUnsafeBufferPointer { shift in
                Parallel.forEachChunk(count: planes, work: x.count) { range in
                    for p in range {
                        let c = p % channels
                        let (s, t) = (scale[c], shift[c])
                        let src = source + p * volume
                        let dst = y + p * volume
                        for i in 0..<volume { dst[i] = src[i] * s + t }
                    }
                }
            }
        }
    }
}
