/// How a sliding-window op (Conv, MaxPool, AveragePool) chooses its padding.
enum AutoPad: Sendable {
    case notSet, sameUpper, sameLower, valid

    init(_ text: String?) throws(KernelError) {
        switch text ?? "NOTSET" {
        case "NOTSET", "": self = .notSet
        case "SAME_UPPER": self = .sameUpper
        case "SAME_LOWER": self = .sameLower
        case "VALID": self = .valid
        case let other: throw .invalid("attribute 'auto_pad' has unknown value '\(other)'")
        }
    }
}

/// The window attributes of a node as written; resolved against an input shape by `resolve`.
struct WindowAttributes: Sendable {
    var kernel: [Int]?
    var strides: [Int]?
    var dilations: [Int]?
    var pads: [Int]?
    var autoPad: AutoPad
    var ceilMode: Bool

    init(_ ctx: NodeContext, ceilMode: Bool = false) throws(KernelError) {
        kernel = try ctx.ints("kernel_shape")
        strides = try ctx.ints("strides")
        dilations = try ctx.ints("dilations")
        pads = try ctx.ints("pads")
        autoPad = try AutoPad(ctx.string("auto_pad"))
        self.ceilMode = ceilMode
    }

    /// Resolves the window for `input` spatial sizes, with `kernel` taken from the weights when
    /// the node does not give it.
    func resolve(input: [Int], weightKernel: [Int]? = nil) throws(KernelError) -> Window {
        let rank = input.count
        guard (1...3).contains(rank) else { throw .unsupported("\(rank) spatial dimensions (supported: 1 to 3)") }
        guard let kernel = kernel ?? weightKernel else { throw .invalid("attribute 'kernel_shape' is missing") }
        if let weightKernel, kernel != weightKernel {
            throw .invalid("kernel_shape \(kernel) does not match the weight's spatial shape \(weightKernel)")
        }
        let strides = self.strides ?? [Int](repeating: 1, count: rank)
        let dilations = self.dilations ?? [Int](repeating: 1, count: rank)
        let pads = self.pads ?? [Int](repeating: 0, count: 2 * rank)
        guard kernel.count == rank, strides.count == rank, dilations.count == rank, pads.count == 2 * rank else {
            throw .invalid(
                "kernel_shape \(kernel), strides \(strides), dilations \(dilations) and pads \(pads) do not fit \(rank) spatial dimensions")
        }
        guard kernel.allSatisfy({ $0 >= 1 }), strides.allSatisfy({ $0 >= 1 }), dilations.allSatisfy({ $0 >= 1 }),
            pads.allSatisfy({ $0 >= 0 }), input.allSatisfy({ $0 >= 0 })
        else { throw .invalid("kernel_shape \(kernel), strides \(strides), dilations \(dilations) or pads \(pads) out of range") }
        var window = Window()
        let offset = 3 - rank
        for axis in 0..<rank {
            let extent = (kernel[axis] - 1) * dilations[axis] + 1
            let size = input[axis]
            let stride = strides[axis]
            var begin = pads[axis]
            var end = pads[axis + rank]
            var out: Int
            switch autoPad {
            case .notSet:
                let span = size + begin + end - extent
                guard span >= 0 else {
                    throw .invalid("window extent \(extent) exceeds the padded input size \(size + begin + end)")
                }
                out = (ceilMode ? (span + stride - 1) / stride : span / stride) + 1
                // A window that would start past the input and its leading padding is dropped.
                if ceilMode, (out - 1) * stride >= size + begin { out -= 1 }
            case .valid:
                begin = 0
                end = 0
                guard size >= extent else { throw .invalid("window extent \(extent) exceeds the input size \(size)") }
                out = (size - extent) / stride + 1
            case .sameUpper, .sameLower:
                out = (size + stride - 1) / stride
                let total = max(0, (out - 1) * stride + extent - size)
                begin = autoPad == .sameUpper ? total / 2 : total - total / 2
                end = total - begin
            }
            let d = axis + offset
            window.input[d] = size
            window.output[d] = out
            window.kernel[d] = kernel[axis]
            window.stride[d] = stride
            window.dilation[d] = dilations[axis]
            window.padBegin[d] = begin
            window.padEnd[d] = end
        }
        window.spatialRank = rank
        return window
    }
}

/// A window resolved for one input shape, always in three spatial dimensions (depth, height,
/// width): 1-D and 2-D ops get leading unit dimensions, so one code path serves all ranks.
struct Window: Sendable {
    var spatialRank = 3
    var input = SIMD3<Int>(1, 1, 1)
    var output = SIMD3<Int>(1, 1, 1)
    var kernel = SIMD3<Int>(1, 1, 1)
    var stride = SIMD3<Int>(1, 1, 1)
    var dilation = SIMD3<Int>(1, 1, 1)
    var padBegin = SIMD3<Int>(0, 0, 0)
    var padEnd = SIMD3<Int>(0, 0, 0)

    var inputVolume: Int { input[0] * input[1] * input[2] }
    var outputVolume: Int { output[0] * output[1] * output[2] }
    var kernelVolume: Int { kernel[0] * kernel[1] * kernel[2] }
    var outputSpatial: [Int] { (3 - spatialRank..<3).map { output[$0] } }

    /// The taps `k` of dimension `axis` whose input position `o·stride − padBegin + k·dilation`
    /// lies in `low..<high`, for output position `o`.
    @inline(__always)
    func taps(_ axis: Int, _ o: Int, low: Int, high: Int) -> Range<Int> {
        let start = o * stride[axis] - padBegin[axis]
        let d = dilation[axis]
        let first = start >= low ? 0 : (low - start + d - 1) / d
        let last = high <= start ? 0 : (high - start + d - 1) / d
        let lo = min(first, kernel[axis])
        return lo..<max(lo, min(last, kernel[axis]))
    }

    /// The output positions `o` of dimension `axis` whose input position `o·stride + offset`
    /// lies inside the input, for a tap at `offset = k·dilation − padBegin`.
    @inline(__always)
    func outputs(_ axis: Int, offset: Int) -> Range<Int> {
        let s = stride[axis]
        let first = offset >= 0 ? 0 : (-offset + s - 1) / s
        let last = input[axis] - offset <= 0 ? 0 : (input[axis] - offset + s - 1) / s
        let lo = min(first, output[axis])
        return lo..<max(lo, min(last, output[axis]))
    }
}
