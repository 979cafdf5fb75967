import Foundation

/// A kernel whose output 0 is input 0 under another shape: the session shares the storage.
protocol ViewKernel: Kernel {}

extension ViewKernel {
    var aliasesInput: Bool { true }
    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        // Only reached if a caller ignores `aliasesInput`; copying keeps the result right anyway.
        guard let input = inputs.first, let output = outputs.first, output.byteCount == input.byteCount else {
            throw .invalid("reshaping changes the element count")
        }
        output.raw.copyMemory(from: input.raw, byteCount: input.byteCount)
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }
}

struct FlattenKernel: ViewKernel {
    let axis: Int

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(["axis"])
        return FlattenKernel(axis: try ctx.int("axis", default: 1))
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let shape = inputs[0].shape
        let resolved = axis < 0 ? axis + shape.count : axis
        guard resolved >= 0, resolved <= shape.count else {
            throw .invalid("axis \(axis) is out of range for input of rank \(shape.count)")
        }
        guard let outer = Shape.elementCount(Array(shape[..<resolved])),
            let inner = Shape.elementCount(Array(shape[resolved...]))
        else { throw .invalid("input shape \(Shape.describe(shape)) is invalid") }
        return [TensorType(inputs[0].dtype, [outer, inner])]
    }
}

struct ReshapeKernel: ViewKernel {
    let allowZero: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        guard ctx.opset >= 5 else { throw .unsupported("Reshape before opset 5 (shape as an attribute)") }
        try ctx.expect(inputs: 2...2)
        try ctx.allowAttributes(ctx.opset >= 14 ? ["allowzero"] : [])
        return ReshapeKernel(allowZero: try ctx.int("allowzero", default: 0) != 0)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        guard let target = values[1] else { throw .shapeNeedsValue }
        guard target.dtype == .int64 || target.dtype == .int32, target.rank == 1 else {
            throw .invalid("input 'shape' must be a 1-D int64 tensor, got \(target.type)")
        }
        let input = inputs[0].shape
        guard let count = Shape.elementCount(input) else {
            throw .invalid("input shape \(Shape.describe(input)) is invalid")
        }
        var shape = target.integers()
        var inferred: Int?
        for (index, dim) in shape.enumerated() {
            switch dim {
            case -1:
                guard inferred == nil else { throw .invalid("shape \(Shape.describe(shape)) has more than one -1") }
                inferred = index
            case 0 where !allowZero:
                guard index < input.count else {
                    throw .invalid(
                        "shape \(Shape.describe(shape)) copies dimension \(index) of input \(Shape.describe(input))")
                }
                shape[index] = input[index]
            default:
                guard dim >= 0 else { throw .invalid("shape \(Shape.describe(shape)) has a negative dimension") }
            }
        }
        if let inferred {
            var known = shape
            known[inferred] = 1
            guard let rest = Shape.elementCount(known), rest > 0, count % rest == 0 else {
                throw .invalid("cannot reshape input \(Shape.describe(input)) to \(Shape.describe(target.integers()))")
            }
            shape[inferred] = count / rest
        }
        guard Shape.elementCount(shape) == count else {
            throw .invalid("cannot reshape input \(Shape.describe(input)) to \(Shape.describe(target.integers()))")
        }
        return [TensorType(inputs[0].dtype, shape)]
    }
}

/// Squeeze and Unsqueeze: axes from the attribute (before opset 13) or from input 1.
struct SqueezeKernel: ViewKernel {
    let unsqueeze: Bool
    let attributeAxes: [Int]?
    let axesInput: Bool

    static func make(unsqueeze: Bool) -> KernelFactory {
        { (ctx: NodeContext) throws(KernelError) -> any Kernel in
            if ctx.opset >= 13 {
                try ctx.expect(inputs: unsqueeze ? 2...2 : 1...2)
                try ctx.allowAttributes([])
                return SqueezeKernel(unsqueeze: unsqueeze, attributeAxes: nil, axesInput: ctx.hasInput(1))
            }
            try ctx.expect(inputs: 1...1)
            try ctx.allowAttributes(["axes"])
            let axes = try ctx.ints("axes")
            if unsqueeze, axes == nil { throw .invalid("attribute 'axes' is required") }
            return SqueezeKernel(unsqueeze: unsqueeze, attributeAxes: axes, axesInput: false)
        }
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        var axes = attributeAxes
        if axesInput {
            guard let value = values[1] else { throw .shapeNeedsValue }
            guard value.dtype == .int64 || value.dtype == .int32, value.rank <= 1 else {
                throw .invalid("input 'axes' must be a 1-D int64 tensor, got \(value.type)")
            }
            axes = value.integers()
        }
        let shape = inputs[0].shape
        let outRank = unsqueeze ? shape.count + (axes?.count ?? 0) : shape.count
        var marked = [Bool](repeating: false, count: outRank)
        for axis in axes ?? [] {
            let resolved = axis < 0 ? axis + outRank : axis
            guard resolved >= 0, resolved < outRank else {
                throw .invalid("axis \(axis) is out of range for rank \(outRank)")
            }
            guard !marked[resolved] else { throw .invalid("axis \(axis) is repeated") }
            marked[resolved] = true
        }
        if unsqueeze {
            var output: [Int] = []
            var next = shape.makeIterator()
            for axis in 0..<outRank { output.append(marked[axis] ? 1 : next.next() ?? 1) }
            return [TensorType(inputs[0].dtype, output)]
        }
        var output: [Int] = []
        for (axis, dim) in shape.enumerated() {
            if axes == nil ? dim == 1 : marked[axis] {
                guard dim == 1 else {
                    throw .invalid("cannot squeeze axis \(axis) of size \(dim) in input \(Shape.describe(shape))")
                }
            } else {
                output.append(dim)
            }
        }
        return [TensorType(inputs[0].dtype, output)]
    }
}

struct IdentityKernel: ViewKernel {
    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes([])
        return IdentityKernel()
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] { [inputs[0]] }
}

/// Dropout at inference: the output is the input. A requested mask cannot share storage, so that
/// variant copies and writes an all-kept mask (bool from opset 10, the input's dtype before).
struct DropoutKernel: ViewKernel {
    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: ctx.opset >= 12 ? 1...3 : 1...1, outputs: 1...2)
        try ctx.allowAttributes(ctx.opset >= 12 ? ["seed"] : ["ratio", "is_test", "consumed_inputs"])
        if ctx.hasInput(2) {
            // Training mode drops at random; only a constant false keeps the op an identity.
            guard let training = ctx.constant(2), training.dtype == .bool, training.count == 1 else {
                throw .unsupported("input 'training_mode' that is not a constant false (training-mode dropout)")
            }
            if training.pointer(as: UInt8.self)[0] != 0 {
                throw .unsupported("input 'training_mode' = true (training-mode dropout)")
            }
        }
        if ctx.outputCount == 2, !ctx.node.outputs[1].isEmpty {
            return DropoutMaskKernel(boolMask: ctx.opset >= 10)
        }
        return DropoutKernel()
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] { [inputs[0]] }
}

struct DropoutMaskKernel: Kernel {
    /// False in opsets 7–9, whose mask has the input's dtype.
    let boolMask: Bool

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        [inputs[0], TensorType(boolMask ? .bool : inputs[0].dtype, inputs[0].shape)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        outputs[0].raw.copyMemory(from: inputs[0].raw, byteCount: inputs[0].byteCount)
        let mask = outputs[1]
        let one = ByteCopy.element(1, dtype: mask.dtype)
        one.withUnsafeBytes { element in
            guard let base = element.baseAddress else { return }
            ByteCopy.fill(mask.raw, count: mask.count, element: base, byteSize: mask.dtype.byteSize)
        }
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }
}

/// Shape: an int64 vector of the input's dimensions, sliced by start/end from opset 15.
struct ShapeKernel: Kernel {
    let start: Int
    let end: Int?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(ctx.opset >= 15 ? ["start", "end"] : [])
        return ShapeKernel(start: try ctx.int("start", default: 0), end: try ctx.int("end"))
    }

    private func dims(_ shape: [Int]) -> [Int] {
        let rank = shape.count
        func clamp(_ value: Int) -> Int { min(max(value < 0 ? value + rank : value, 0), rank) }
        let low = clamp(start)
        let high = clamp(end ?? rank)
        return low < high ? Array(shape[low..<high]) : []
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        [TensorType(.int64, [dims(inputs[0].shape).count])]
    }

    func valuesFromTypes(_ inputs: [TensorType]) -> [Tensor]? {
        guard let input = inputs.first, !input.isAbsent else { return nil }
        let values = dims(input.shape)
        return [Tensor(int64s: values.map { Int64($0) }, shape: [values.count])]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let values = dims(inputs[0].shape)
        for (index, value) in values.enumerated() { outputs[0].int64s[index] = Int64(value) }
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }
}
