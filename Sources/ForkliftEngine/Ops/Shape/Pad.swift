import Foundation

/// Pad: constant, reflect, edge and wrap modes on any dtype. Negative pads crop.
struct PadKernel: Kernel {
    enum Mode: String { case constant, reflect, edge, wrap }

    let mode: Mode
    /// Pads from the attribute (before opset 11); otherwise input 1.
    let attributePads: [Int]?
    let attributeValue: Float
    let hasValueInput: Bool
    let hasAxesInput: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        let modeName = try ctx.string("mode") ?? "constant"
        guard let mode = Mode(rawValue: modeName) else { throw .unsupported("attribute 'mode' = '\(modeName)'") }
        if ctx.opset < 11 {
            let padsName = ctx.opset < 2 ? "paddings" : "pads"
            try ctx.expect(inputs: 1...1)
            try ctx.allowAttributes(["mode", "value", padsName])
            guard let pads = try ctx.ints(padsName) else { throw .invalid("attribute '\(padsName)' is required") }
            return PadKernel(
                mode: mode, attributePads: pads, attributeValue: try ctx.float("value", default: 0),
                hasValueInput: false, hasAxesInput: false)
        }
        try ctx.expect(inputs: ctx.opset >= 18 ? 2...4 : 2...3)
        try ctx.allowAttributes(["mode"])
        return PadKernel(
            mode: mode, attributePads: nil, attributeValue: 0, hasValueInput: ctx.hasInput(2),
            hasAxesInput: ctx.hasInput(3))
    }

    /// Begin and end pads for every axis.
    private func pads(shape: [Int], values: [Tensor?]) throws(KernelError) -> (begin: [Int], end: [Int]) {
        let rank = shape.count
        var raw: [Int]
        if let attributePads {
            raw = attributePads
        } else {
            guard let value = values[1] else { throw .shapeNeedsValue }
            guard value.dtype == .int64, value.rank == 1 else {
                throw .invalid("input 'pads' must be a 1-D int64 tensor, got \(value.type)")
            }
            raw = value.integers()
        }
        var axes = Array(0..<rank)
        if hasAxesInput {
            guard let value = values[3] else { throw .shapeNeedsValue }
            guard value.dtype == .int64 || value.dtype == .int32, value.rank <= 1 else {
                throw .invalid("input 'axes' must be a 1-D integer tensor, got \(value.type)")
            }
            axes = []
            for axis in value.integers() {
                let resolved = axis < 0 ? axis + rank : axis
                guard resolved >= 0, resolved < rank, !axes.contains(resolved) else {
                    throw .invalid("axis \(axis) is out of range or repeated for rank \(rank)")
                }
                axes.append(resolved)
            }
        }
        guard raw.count == 2 * axes.count else {
            throw .invalid(
                "pads has \(raw.count) values; input of shape \(Shape.describe(shape)) needs \(2 * axes.count)")
        }
        var begin = [Int](repeating: 0, count: rank)
        var end = [Int](repeating: 0, count: rank)
        for (position, axis) in axes.enumerated() {
            begin[axis] = raw[position]
            end[axis] = raw[axes.count + position]
        }
        return (begin, end)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let shape = inputs[0].shape
        if hasValueInput, inputs.count > 2, !inputs[2].isAbsent, inputs[2].dtype != inputs[0].dtype {
            throw .invalid("input 'constant_value' has dtype \(inputs[2].dtype), data has \(inputs[0].dtype)")
        }
        let (begin, end) = try pads(shape: shape, values: values)
        var output: [Int] = []
        for axis in shape.indices {
            let limit = Shape.maxElements
            guard begin[axis] > -limit, begin[axis] < limit, end[axis] > -limit, end[axis] < limit,
                shape[axis] + min(begin[axis], 0) + min(end[axis], 0) >= 0
            else {
                throw .invalid("pads \(begin[axis]), \(end[axis]) are invalid for axis \(axis) of size \(shape[axis])")
            }
            let sum = shape[axis] + begin[axis] + end[axis]
            if mode != .constant, shape[axis] + min(begin[axis], 0) + min(end[axis], 0) == 0, sum > 0 {
                throw .invalid("cannot pad axis \(axis), empty after cropping, in mode '\(mode.rawValue)'")
            }
            output.append(sum)
        }
        return [TensorType(inputs[0].dtype, output)]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }

    /// Input index for output position `position` of an axis, or -1 for the constant. Negative
    /// pads crop first, as onnxruntime does, so that edge, reflect and wrap see the cropped input.
    private func source(_ position: Int, begin: Int, end: Int, size: Int) -> Int {
        let low = max(-begin, 0)
        let count = size - low - max(-end, 0)
        let index = position - max(begin, 0)
        if index >= 0, index < count { return low + index }
        switch mode {
        case .constant: return -1
        case .edge: return low + min(max(index, 0), count - 1)
        case .wrap: return low + ((index % count) + count) % count
        case .reflect:
            guard count > 1 else { return low }
            let period = 2 * (count - 1)
            let folded = ((index % period) + period) % period
            return low + (folded < count ? folded : period - folded)
        }
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let input = inputs[0]
        let output = outputs[0]
        let byteSize = input.dtype.byteSize
        guard output.count > 0 else { return }
        let rank = input.rank
        guard rank > 0 else {
            output.raw.copyMemory(from: input.raw, byteCount: byteSize)
            return
        }
        let (begin, end) = try pads(shape: input.shape, values: inputs.map { $0 })
        var constant = ByteCopy.element(Double(attributeValue), dtype: input.dtype)
        if hasValueInput, inputs.count > 2, !inputs[2].isAbsent, inputs[2].count > 0 {
            constant = Array(UnsafeRawBufferPointer(start: inputs[2].raw, count: byteSize))
        }
        let inShape = input.shape
        let outShape = zip(inShape, zip(begin, end)).map { $0 + $1.0 + $1.1 }
        let maps = (0..<rank).map { axis in
            (0..<outShape[axis]).map { source($0, begin: begin[axis], end: end[axis], size: inShape[axis]) }
        }
        let inStrides = Shape.strides(inShape)
        let last = rank - 1
        let rowLength = outShape[last]
        let rowBytes = rowLength * byteSize
        let inLength = inShape[last]
        // The part of each output row that is a straight copy of the input row.
        let copyStart = min(max(begin[last], 0), rowLength)
        let copyEnd = max(min(begin[last] + inLength, rowLength), copyStart)
        let rows = outShape[..<last].reduce(1, *)
        var index = [Int](repeating: 0, count: last)
        constant.withUnsafeBytes { constantBytes in
            guard let value = constantBytes.baseAddress else { return }
            for row in 0..<rows {
                let destination = output.raw + row * rowBytes
                var offset = 0
                var inside = true
                for axis in 0..<last {
                    let source = maps[axis][index[axis]]
                    if source < 0 { inside = false }
                    offset += source * inStrides[axis]
                }
                if inside {
                    let sourceRow = input.raw + offset * byteSize
                    if copyEnd > copyStart {
                        (destination + copyStart * byteSize).copyMemory(
                            from: sourceRow + (copyStart - begin[last]) * byteSize,
                            byteCount: (copyEnd - copyStart) * byteSize)
                    }
                    if mode == .constant {
                        ByteCopy.fill(destination, count: copyStart, element: value, byteSize: byteSize)
                        ByteCopy.fill(
                            destination + copyEnd * byteSize, count: rowLength - copyEnd, element: value,
                            byteSize: byteSize)
                    } else {
                        for position in 0..<copyStart {
                            (destination + position * byteSize).copyMemory(
                                from: sourceRow + maps[last][position] * byteSize, byteCount: byteSize)
                        }
                        for position in copyEnd..<rowLength {
                            (destination + position * byteSize).copyMemory(
                                from: sourceRow + maps[last][position] * byteSize, byteCount: byteSize)
                        }
                    }
                } else {
                    ByteCopy.fill(destination, count: rowLength, element: value, byteSize: byteSize)
                }
                var axis = last - 1
                while axis >= 0 {
                    index[axis] += 1
                    if index[axis] < outShape[axis] { break }
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
    }
}
