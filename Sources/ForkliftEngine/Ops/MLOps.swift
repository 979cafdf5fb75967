/// Kernels of this group, by op name.
enum MLOps {
    static let factories: [String: KernelFactory] = [
        "ai.onnx.ml.ArrayFeatureExtractor": ArrayFeatureExtractorKernel.make
    ]
}

/// Selects entries of the last axis of X; skl2onnx uses it to map ArgMax indices to class labels.
/// Like onnxruntime (and ONNX's reference), a 1-D X gives a [1, n] output.
struct ArrayFeatureExtractorKernel: Kernel {
    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 2...2)
        try ctx.allowAttributes([])
        return ArrayFeatureExtractorKernel()
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let shape = inputs[0].shape
        guard !shape.isEmpty else { throw .invalid("input 'X' must have rank >= 1") }
        try inputs[1].require([.int64], "input 'Y'")
        guard let count = Shape.elementCount(inputs[1].shape) else {
            throw .invalid("input 'Y' has invalid shape \(Shape.describe(inputs[1].shape))")
        }
        let outer = shape.count == 1 ? [1] : Array(shape.dropLast())
        return [TensorType(inputs[0].dtype, outer + [count])]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let data = inputs[0]
        let width = data.shape[data.rank - 1]
        let indices = try GatherKernel.normalized(
            inputs[1], size: width, role: "Y", axis: data.rank - 1, allowNegative: false)
        let rows = width == 0 ? 0 : data.count / width
        let byteSize = data.dtype.byteSize
        guard !indices.isEmpty else { return }
        for row in 0..<rows {
            GatherKernel.gatherElements(
                outputs[0].raw + row * indices.count * byteSize, data.raw + row * width * byteSize, indices,
                byteSize: byteSize)
        }
    }
}
