import Foundation

/// Mean over a set of axes. The axes are an attribute before opset 18 and an optional input from
/// 18 on; no axes means all of them, unless `noop_with_empty_axes` makes the op an identity.
struct ReduceMeanKernel: Kernel {
    let attributeAxes: [Int]?
    let axesFromInput: Bool
    let keepdims: Bool
    let noopWithEmptyAxes: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        if ctx.opset >= 18 {
            try ctx.expect(inputs: 1...2)
            try ctx.allowAttributes(["keepdims", "noop_with_empty_axes"])
        } else {
            try ctx.expect(inputs: 1...1)
            try ctx.allowAttributes(["axes", "keepdims"])
        }
        return ReduceMeanKernel(
            attributeAxes: ctx.opset >= 18 ? nil : try ctx.ints("axes"), axesFromInput: ctx.hasInput(1),
            keepdims: try ctx.int("keepdims", default: 1) != 0,
            noopWithEmptyAxes: try ctx.int("noop_with_empty_axes", default: 0) != 0)
    }

    /// Which axes reduce, or nil when the op is an identity.
    private func reducedAxes(rank: Int, axesInput: Tensor?) throws(KernelError) -> [Bool]? {
        var axes = attributeAxes ?? []
        if axesFromInput {
            guard let axesInput else { throw .shapeNeedsValue }
            guard axesInput.dtype == .int64 || axesInput.dtype == .int32, axesInput.rank <= 1 else {
                throw .invalid("axes must be a 1-D int64 tensor, got \(axesInput.type)")
            }
            axes = axesInput.integers()
        }
        if axes.isEmpty {
            return noopWithEmptyAxes ? nil : [Bool](repeating: true, count: rank)
        }
        var flags = [Bool](repeating: false, count: rank)
        for axis in axes {
            let resolved = try Shape.axis(axis, rank: rank)
            guard resolved < rank else { throw .invalid("axis \(axis) is out of range for rank \(rank)") }
            guard !flags[resolved] else { throw .invalid("axis \(axis) is repeated in axes \(axes)") }
            flags[resolved] = true
        }
        return flags
    }

    private func axesValue(_ values: [Tensor?]) -> Tensor? {
        guard values.count > 1, let value = values[1], !value.isAbsent else { return nil }
        return value
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        try inputs[0].require([.float32], "data")
        let shape = inputs[0].shape
        guard let flags = try reducedAxes(rank: shape.count, axesInput: axesValue(values)) else { return [inputs[0]] }
        var out: [Int] = []
        for (dim, reduced) in zip(shape, flags) {
            if !reduced {
                out.append(dim)
            } else if keepdims {
                out.append(1)
            }
        }
        return [TensorType(.float32, out)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let input = inputs[0]
        let output = outputs[0]
        let y = output.floats
        guard let flags = try reducedAxes(rank: input.rank, axesInput: axesValue(inputs)) else {
            y.update(from: input.floats, count: input.count)
            return
        }
        y.update(repeating: 0, count: output.count)
        var reducedCount = 1
        for (dim, reduced) in zip(input.shape, flags) where reduced { reducedCount *= dim }
        if input.count > 0 {
            Self.accumulate(input.floats, into: y, shape: input.shape, reduced: flags)
        }
        let scale = 1 / Float(reducedCount)
        for i in 0..<output.count { y[i] *= scale }
    }

    /// Adds every input element into its output slot, reading the input once in order. Adjacent
    /// axes of the same kind are merged first, so the innermost loop is a contiguous row that is
    /// either summed into one slot or added onto a contiguous output row.
    private static func accumulate(
        _ x: UnsafeMutablePointer<Float>, into y: UnsafeMutablePointer<Float>, shape: [Int], reduced: [Bool]
    ) {
        var dims: [Int] = []
        var kinds: [Bool] = []
        for (dim, isReduced) in zip(shape, reduced) where dim != 1 {
            if let last = kinds.last, last == isReduced {
                dims[dims.count - 1] *= dim
            } else {
                dims.append(dim)
                kinds.append(isReduced)
            }
        }
        if dims.isEmpty {
            dims = [1]
            kinds = [false]
        }
        // Output strides: kept axes in row-major order over the kept dims, 0 for reduced axes.
        var outStrides = [Int](repeating: 0, count: dims.count)
        var acc = 1
        for axis in stride(from: dims.count - 1, through: 0, by: -1) where !kinds[axis] {
            outStrides[axis] = acc
            acc *= dims[axis]
        }
        let inner = dims[dims.count - 1]
        let innerReduced = kinds[kinds.count - 1]
        let outerRank = dims.count - 1
        let rows = dims[..<outerRank].reduce(1, *)
        var index = [Int](repeating: 0, count: outerRank)
        var offset = 0
        for row in 0..<rows {
            let source = x + row * inner
            if innerReduced {
                y[offset] += ReductionMath.sum(source, count: inner)
            } else {
                let target = y + offset
                for t in 0..<inner { target[t] += source[t] }
            }
            var axis = outerRank - 1
            while axis >= 0 {
                index[axis] += 1
                offset += outStrides[axis]
                if index[axis] < dims[axis] { break }
                offset -= outStrides[axis] * index[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }
}
