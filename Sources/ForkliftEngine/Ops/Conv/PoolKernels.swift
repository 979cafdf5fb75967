import Foundation

/// MaxPool over float32, uint8 and int8 (1 to 3 spatial dimensions), with the optional Indices
/// output: flat positions in the input, row-major (storage_order 0) or with the spatial axes
/// column-major (storage_order 1).
struct MaxPoolKernel: Kernel {
    let window: WindowAttributes
    let columnMajor: Bool
    let withIndices: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1, outputs: 1...2)
        try ctx.allowAttributes(["auto_pad", "ceil_mode", "dilations", "kernel_shape", "pads", "storage_order", "strides"])
        let storageOrder = try ctx.int("storage_order", default: 0)
        guard storageOrder == 0 || storageOrder == 1 else { throw .invalid("attribute 'storage_order' = \(storageOrder)") }
        let window = try WindowAttributes(ctx, ceilMode: ctx.int("ceil_mode", default: 0) != 0)
        let withIndices = ctx.outputCount == 2 && !ctx.node.outputs[1].isEmpty
        return MaxPoolKernel(window: window, columnMajor: storageOrder == 1, withIndices: withIndices)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let (x, w) = try Pooling.resolve(inputs, window, dtypes: [.float32, .uint8, .int8])
        let shape = Array(x.shape[0..<2]) + w.outputSpatial
        return withIndices ? [TensorType(x.dtype, shape), TensorType(.int64, shape)] : [TensorType(x.dtype, shape)]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int {
        guard let x = inputs.first, let w = try? window.resolve(input: Array(x.shape.dropFirst(2))) else { return 0 }
        return (outputs.first?.shape.reduce(1, *) ?? 0) * w.kernelVolume
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let (x, w) = try Pooling.resolve(inputs.map(\.type), window, dtypes: [.float32, .uint8, .int8])
        let planes = x.shape[0] * x.shape[1]
        let indices = withIndices && outputs.count > 1 ? outputs[1].int64s : nil
        switch x.dtype {
        case .float32: pool(inputs[0].floats, outputs[0].floats, indices, planes, w, lowest: -Float.infinity)
        case .uint8: pool(inputs[0].pointer(as: UInt8.self), outputs[0].pointer(as: UInt8.self), indices, planes, w, lowest: 0)
        case .int8: pool(inputs[0].pointer(as: Int8.self), outputs[0].pointer(as: Int8.self), indices, planes, w, lowest: .min)
        default: throw .unsupported("input X has dtype \(x.dtype)")
        }
    }

    private func pool<T: Comparable>(
        _ x: UnsafeMutablePointer<T>, _ y: UnsafeMutablePointer<T>, _ indices: UnsafeMutablePointer<Int64>?, _ planes: Int,
        _ w: Window, lowest: T
    ) {
        let (inD, inH, inW) = (w.input[0], w.input[1], w.input[2])
        let (outH, outW) = (w.output[1], w.output[2])
        let columnMajor = self.columnMajor
        Parallel.forEachChunk(count: planes, work: planes * w.outputVolume * w.kernelVolume) { range in
            for p in range {
                let plane = x + p * w.inputVolume
                var out = p * w.outputVolume
                for od in 0..<w.output[0] {
                    let depthTaps = w.taps(0, od, low: 0, high: inD)
                    for oh in 0..<outH {
                        let rowTaps = w.taps(1, oh, low: 0, high: inH)
                        for ow in 0..<outW {
                            let columnTaps = w.taps(2, ow, low: 0, high: inW)
                            let startW = ow * w.stride[2] - w.padBegin[2]
                            var best = lowest
                            var bestAt = -1
                            for kd in depthTaps {
                                let id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0]
                                for kh in rowTaps {
                                    let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                                    let base = (id * inH + ih) * inW + startW
                                    if indices == nil {
                                        for kw in columnTaps { best = max(best, plane[base + kw * w.dilation[2]]) }
                                    } else {
                                        for kw in columnTaps {
                                            let at = base + kw * w.dilation[2]
                                            if bestAt < 0 || plane[at] > best { (best, bestAt) = (plane[at], at) }
                                        }
                                    }
                                }
                            }
                            y[out] = best
                            if let indices {
                                var flat = bestAt
                                if columnMajor, bestAt >= 0 {
                                    let (id, rest) = bestAt.quotientAndRemainder(dividingBy: inH * inW)
                                    let (ih, iw) = rest.quotientAndRemainder(dividingBy: inW)
                                    flat = id + inD * (ih + inH * iw)
                                }
                                indices[out] = Int64(bestAt < 0 ? -1 : p * w.inputVolume + flat)
                            }
                            out += 1
                        }
                    }
                }
            }
        }
    }
}

/// AveragePool over float32. The divisor counts the taps inside the input, or with
/// count_include_pad also those in the explicit padding (never those past it that ceil_mode adds).
struct AveragePoolKernel: Kernel {
    let window: WindowAttributes
    let countPadding: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(["auto_pad", "ceil_mode", "count_include_pad", "dilations", "kernel_shape", "pads", "strides"])
        let window = try WindowAttributes(ctx, ceilMode: ctx.int("ceil_mode", default: 0) != 0)
        return AveragePoolKernel(window: window, countPadding: try ctx.int("count_include_pad", default: 0) != 0)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let (x, w) = try Pooling.resolve(inputs, window, dtypes: [.float32])
        return [TensorType(x.dtype, Array(x.shape[0..<2]) + w.outputSpatial)]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int {
        guard let x = inputs.first, let w = try? window.resolve(input: Array(x.shape.dropFirst(2))) else { return 0 }
        return (outputs.first?.shape.reduce(1, *) ?? 0) * w.kernelVolume
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let (xType, w) = try Pooling.resolve(inputs.map(\.type), window, dtypes: [.float32])
        let planes = xType.shape[0] * xType.shape[1]
        let x = inputs[0].floats
        let y = outputs[0].floats
        let (inD, inH, inW) = (w.input[0], w.input[1], w.input[2])
        let (outH, outW) = (w.output[1], w.output[2])
        let countPadding = self.countPadding
        Parallel.forEachChunk(count: planes, work: planes * w.outputVolume * w.kernelVolume) { range in
            for p in range {
                let plane = x + p * w.inputVolume
                var out = p * w.outputVolume
                for od in 0..<w.output[0] {
                    let depthTaps = w.taps(0, od, low: 0, high: inD)
                    let depthCount = countPadding ? w.taps(0, od, low: -w.padBegin[0], high: inD + w.padEnd[0]).count : depthTaps.count
                    for oh in 0..<outH {
                        let rowTaps = w.taps(1, oh, low: 0, high: inH)
                        let rowCount = countPadding ? w.taps(1, oh, low: -w.padBegin[1], high: inH + w.padEnd[1]).count : rowTaps.count
                        for ow in 0..<outW {
                            let columnTaps = w.taps(2, ow, low: 0, high: inW)
                            let columnCount =
                                countPadding ? w.taps(2, ow, low: -w.padBegin[2], high: inW + w.padEnd[2]).count : columnTaps.count
                            let startW = ow * w.stride[2] - w.padBegin[2]
                            var sum: Float = 0
                            for kd in depthTaps {
                                let id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0]
                                for kh in rowTaps {
                                    let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                                    let base = plane + (id * inH + ih) * inW + startW
                                    for kw in columnTaps { sum += base[kw * w.dilation[2]] }
                                }
                            }
                            let count = depthCount * rowCount * columnCount
                            y[out] = count > 0 ? sum / Float(count) : .nan
                            out += 1
                        }
                    }
                }
            }
        }
    }
}

/// GlobalAveragePool over float32 inputs of any rank ≥ 3: the mean of each [n, c] plane.
struct GlobalAveragePoolKernel: Kernel {
    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes([])
        return GlobalAveragePoolKernel()
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        guard let x = inputs.first else { throw .invalid("expects input X") }
        try x.require([.float32], "input X")
        guard x.shape.count >= 3 else { throw .invalid("input X has shape \(Shape.describe(x.shape)); expected rank ≥ 3") }
        return [TensorType(.float32, Array(x.shape[0..<2]) + [Int](repeating: 1, count: x.shape.count - 2))]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { inputs.first?.shape.reduce(1, *) ?? 0 }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let x = inputs[0]
        guard x.shape.count >= 3 else { throw .invalid("input X has shape \(Shape.describe(x.shape)); expected rank ≥ 3") }
        let planes = x.shape[0] * x.shape[1]
        let volume = x.shape.dropFirst(2).reduce(1, *)
        let source = x.floats
        let y = outputs[0].floats
        Parallel.forEachChunk(count: planes, work: x.count) { range in
            for p in range {
                let plane = source + p * volume
                // Several partial sums let the loop vectorise without reassociation flags.
                var partial = (Float(0), Float(0), Float(0), Float(0))
                var i = 0
                while i + 4 <= volume {
                    partial.0 += plane[i]
                    partial.1 += plane[i + 1]
                    partial.2 += plane[i + 2]
                    partial.3 += plane[i + 3]
                    i += 4
                }
                var sum = (partial.0 + partial.1) + (partial.2 + partial.3)
                while i < volume {
                    sum += plane[i]
                    i += 1
                }
                y[p] = volume > 0 ? sum / Float(volume) : .nan
            }
        }
    }
}

enum Pooling {
    /// Checks the input of a pooling op and resolves its window.
    static func resolve(_ inputs: [TensorType], _ window: WindowAttributes, dtypes: Set<DType>) throws(KernelError) -> (TensorType, Window)
    {
        guard let x = inputs.first else { throw .invalid("expects input X") }
        try x.require(dtypes, "input X")
        guard x.shape.count >= 3 else { throw .invalid("input X has shape \(Shape.describe(x.shape)); expected rank ≥ 3") }
        return (x, try window.resolve(input: Array(x.shape[2...])))
    }
}
