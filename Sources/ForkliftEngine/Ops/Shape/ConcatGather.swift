import Foundation

struct ConcatKernel: Kernel {
    let axis: Int

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...Int.max)
        try ctx.allowAttributes(["axis"])
        guard let axis = try ctx.int("axis") ?? (ctx.opset < 4 ? 1 : nil) else {
            throw .invalid("attribute 'axis' is required")
        }
        return ConcatKernel(axis: axis)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let first = inputs[0]
        guard !first.shape.isEmpty else { throw .invalid("cannot concatenate scalars") }
        let resolved = try Shape.axis(axis, rank: first.shape.count)
        var shape = first.shape
        shape[resolved] = 0
        for (index, input) in inputs.enumerated() {
            guard !input.isAbsent else { throw .invalid("input \(index) is missing") }
            guard input.dtype == first.dtype else {
                throw .invalid("input \(index) has dtype \(input.dtype), input 0 has \(first.dtype)")
            }
            var matches = input.shape.count == first.shape.count
            for dim in 0..<first.shape.count where matches && dim != resolved {
                matches = input.shape[dim] == first.shape[dim]
            }
            guard matches else {
                throw .invalid(
                    "input \(index) has shape \(Shape.describe(input.shape)), incompatible with input 0's "
                        + "\(Shape.describe(first.shape)) (only axis \(axis) may differ)")
            }
            shape[resolved] += input.shape[resolved]
        }
        return [TensorType(first.dtype, shape)]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let output = outputs[0]
        let resolved = try Shape.axis(axis, rank: output.rank)
        let byteSize = output.dtype.byteSize
        let outer = output.shape[..<resolved].reduce(1, *)
        let inner = output.shape[(resolved + 1)...].reduce(1, *) * byteSize
        let outBlock = output.shape[resolved] * inner
        var offset = 0
        for input in inputs {
            let block = input.shape[resolved] * inner
            guard block > 0 else { continue }
            for o in 0..<outer {
                (output.raw + o * outBlock + offset).copyMemory(from: input.raw + o * block, byteCount: block)
            }
            offset += block
        }
    }
}

/// Gather: data[..., indices, ...] along one axis, for any data dtype and int32/int64 indices.
struct GatherKernel: Kernel {
    let axis: Int

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 2...2)
        try ctx.allowAttributes(["axis"])
        return GatherKernel(axis: try ctx.int("axis", default: 0))
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let data = inputs[0].shape
        guard !data.isEmpty else { throw .invalid("input 'data' must have rank >= 1") }
        try inputs[1].require([.int64, .int32], "input 'indices'")
        let resolved = try Shape.axis(axis, rank: data.count)
        return [
            TensorType(inputs[0].dtype, Array(data[..<resolved]) + inputs[1].shape + Array(data[(resolved + 1)...]))
        ]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let data = inputs[0]
        let output = outputs[0]
        let resolved = try Shape.axis(axis, rank: data.rank)
        let axisSize = data.shape[resolved]
        let indices = try Self.normalized(inputs[1], size: axisSize, role: "indices", axis: resolved)
        let byteSize = data.dtype.byteSize
        let outer = data.shape[..<resolved].reduce(1, *)
        let innerCount = data.shape[(resolved + 1)...].reduce(1, *)
        let inner = innerCount * byteSize
        guard inner > 0, !indices.isEmpty else { return }
        for o in 0..<outer {
            let source = data.raw + o * axisSize * inner
            let destination = output.raw + o * indices.count * inner
            if innerCount == 1 {
                Self.gatherElements(destination, source, indices, byteSize: byteSize)
            } else {
                for (k, index) in indices.enumerated() {
                    (destination + k * inner).copyMemory(from: source + index * inner, byteCount: inner)
                }
            }
        }
    }

    /// Index values resolved against `size` (negative counts from the end), each checked.
    static func normalized(_ tensor: Tensor, size: Int, role: String, axis: Int, allowNegative: Bool = true)
        throws(KernelError) -> [Int]
    {
        var values = tensor.integers()
        for (position, value) in values.enumerated() {
            let index = value < 0 && allowNegative ? value + size : value
            guard index >= 0, index < size else {
                throw .invalid("\(role)[\(position)] = \(value) is out of range for axis \(axis) of size \(size)")
            }
            values[position] = index
        }
        return values
    }

    /// Single-element gathers, typed so that they do not go through memcpy per element.
    static func gatherElements(
        _ destination: UnsafeMutableRawPointer, _ source: UnsafeRawPointer, _ indices: [Int], byteSize: Int
    ) {
        func typed<T>(_: T.Type) {
            let out = destination.assumingMemoryBound(to: T.self)
            let input = source.assumingMemoryBound(to: T.self)
            for (k, index) in indices.enumerated() { out[k] = input[index] }
        }
        switch byteSize {
        case 1: typed(UInt8.self)
        case 4: typed(UInt32.self)
        case 8: typed(UInt64.self)
        default:
            for (k, index) in indices.enumerated() {
                (destination + k * byteSize).copyMemory(from: source + index * byteSize, byteCount: byteSize)
            }
        }
    }
}
