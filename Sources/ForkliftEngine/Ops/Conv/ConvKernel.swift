import Foundation

/// Conv over float32 NCHW (1 to 3 spatial dimensions). Four paths: a 1×1 stride-1 unpadded
/// convolution is a product with the input as it lies; a depthwise convolution (one input channel
/// per group) is a direct loop; a 3×3 stride-1 one with constant weights is Winograd's F(2×2, 3×3)
/// where AVX-512 runs (`WinogradFilters`); everything else is im2col followed by a product per
/// chunk and group. Constant weights are packed at load for `ConvTile` (`ConvFilters`); weights computed at
/// run time, [M, C/g, k…], are already g contiguous [M/g, C/g·k…] matrices for sgemm.
struct ConvKernel: Kernel {
    let window: WindowAttributes
    let group: Int
    let activation: Activation?
    /// The weights when constant and not packed, kept so that the session can drop its own reference.
    let constantWeight: Tensor?
    /// The constant weights packed for `ConvTile`, when `ConvFilters.applies`; then W itself is
    /// never read (the model drops its data).
    let filters: ConvFilters?
    /// The constant weights transformed for Winograd's F(2×2, 3×3), when `WinogradFilters.applies`;
    /// W itself is then never read either.
    let winograd: WinogradFilters?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 2...3)
        try ctx.allowAttributes(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        let group = try ctx.int("group", default: 1)
        guard group >= 1 else { throw .invalid("attribute 'group' = \(group) must be positive") }
        let weight = ctx.constant(1)
        if let weight, weight.dtype != .float32 { throw .unsupported("input W has dtype \(weight.dtype)") }
        let window = try WindowAttributes(ctx)
        let winograd = weight.flatMap { w in
            WinogradFilters.applies(to: w, group: group, window: window) ? WinogradFilters(w) : nil
        }
        let filters =
            winograd != nil
            ? nil : weight.flatMap { w in ConvFilters.applies(to: w, group: group) ? ConvFilters(w, group: group) : nil }
        return ConvKernel(
            window: window, group: group, activation: ctx.fusedActivation,
            constantWeight: filters == nil && winograd == nil ? weight : nil, filters: filters, winograd: winograd)
    }

    /// Packed or transformed filters are all a run reads of W; the model then keeps only W's shape.
    var absorbedInputs: [Int] { filters == nil && winograd == nil ? [] : [1] }

    /// Validated sizes of one run.
    struct Plan {
        var batch: Int
        var inChannels: Int
        var outChannels: Int
        var window: Window
    }

    private func plan(_ inputs: [TensorType]) throws(KernelError) -> Plan {
        guard inputs.count >= 2 else { throw .invalid("expects inputs X and W") }
        let x = inputs[0]
        let w = inputs[1]
        try x.require([.float32], "input X")
        try w.require([.float32], "input W")
        guard x.shape.count >= 3 else { throw .invalid("input X has shape \(Shape.describe(x.shape)); expected rank ≥ 3") }
        guard w.shape.count == x.shape.count else {
            throw .invalid("input W has shape \(Shape.describe(w.shape)), input X \(Shape.describe(x.shape)): ranks differ")
        }
        let channels = x.shape[1]
        let filters = w.shape[0]
        guard w.shape[1] * group == channels, filters % group == 0 else {
            throw .invalid(
                "input W has shape \(Shape.describe(w.shape)) for input X \(Shape.describe(x.shape)) and group \(group): channel counts do not match"
            )
        }
        if inputs.count > 2, !inputs[2].isAbsent {
            try inputs[2].require([.float32], "input B")
            guard inputs[2].shape == [filters] else {
                throw .invalid("input B has shape \(Shape.describe(inputs[2].shape)); expected [\(filters)]")
            }
        }
        let resolved = try window.resolve(input: Array(x.shape[2...]), weightKernel: Array(w.shape[2...]))
        return Plan(batch: x.shape[0], inChannels: channels, outChannels: filters, window: resolved)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let plan = try plan(inputs)
        let shape = [plan.batch, plan.outChannels] + plan.window.outputSpatial
        guard Shape.elementCount(shape) != nil else { throw .invalid("output shape \(Shape.describe(shape)) is too large") }
        return [TensorType(.float32, shape)]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int {
        guard inputs.count >= 2, let out = outputs.first, out.shape.count >= 3, inputs[1].shape.count >= 2 else { return 0 }
        let perOutput = inputs[1].shape.dropFirst().reduce(1, *)
        return 2 * out.shape.reduce(1, *) * perOutput
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let plan = try plan(inputs.map(\.type))
        // A data-less placeholder when `filters` absorbed W: then only the packed paths below run.
        let weight = (constantWeight ?? inputs[1]).floats
        let bias: UnsafeMutablePointer<Float>? = inputs.count > 2 && !inputs[2].isAbsent ? inputs[2].floats : nil
        let x = inputs[0].floats
        let y = outputs[0].floats
        let w = plan.window
        let inVolume = w.inputVolume
        let outVolume = w.outputVolume
        let groupIn = plan.inChannels / group
        let groupOut = plan.outChannels / group
        if plan.batch == 0 || plan.outChannels == 0 || outVolume == 0 { return }

        if groupIn == 1, group == plan.inChannels {
            Depthwise.run(
                x: x, weight: weight, bias: bias, y: y, batch: plan.batch, channels: plan.inChannels,
                multiplier: groupOut, window: w, activation: activation)
            return
        }

        if let winograd {
            // `applies` checked the attributes; the resolved window can only be 2-D 3×3 stride 1.
            guard w.input[0] == 1, w.kernel == SIMD3(1, 3, 3), w.stride == SIMD3(1, 1, 1), w.dilation == SIMD3(1, 1, 1) else {
                throw .invalid("window \(w) does not fit the Winograd filters")
            }
            winograd.run(x: x, batch: plan.batch, window: w, bias: bias, activation: activation, y: y)
            return
        }

        let pointwise = w.kernel == SIMD3(1, 1, 1) && w.stride == SIMD3(1, 1, 1) && w.padBegin == .zero && w.padEnd == .zero
        if !pointwise {
            try ConvGemm(window: w, batch: plan.batch, inChannels: plan.inChannels, outChannels: plan.outChannels, group: group)
                .run(x: x, weight: weight, packed: filters, bias: bias, y: y, activation: activation)
            return
        }
        if let filters, filters.k == groupIn {
            // The input's channel planes are B as they lie: no im2col, and the images of the
            // batch are one run of columns.
            for g in 0..<group {
                let space = ColumnSpace(
                    b: x + g * groupIn * inVolume, ldb: inVolume, bImage: plan.inChannels * inVolume,
                    y: y + g * groupOut * outVolume, ldy: outVolume, yImage: plan.outChannels * outVolume, perImage: outVolume,
                    images: plan.batch)
                filters.multiply(group: g, space, bias: bias.map { $0 + g * groupOut }, activation: activation)
            }
            return
        }
        // A pointwise convolution multiplies the weights by each image's [C, H·W] as it lies.
        let k = groupIn
        for n in 0..<plan.batch {
            for g in 0..<group {
                let columns = x + (n * plan.inChannels + g * groupIn) * inVolume
                let out = y + (n * plan.outChannels + g * groupOut) * outVolume
                if k == 0 {
                    for i in 0..<(groupOut * outVolume) { out[i] = 0 }
                } else {
                    LinearBLAS.sgemm(
                        transA: false, transB: false, m: groupOut, n: outVolume, k: k, alpha: 1, a: weight + g * groupOut * k,
                        lda: k, b: columns, ldb: outVolume, beta: 0, c: out, ldc: outVolume)
                }
                ConvEpilogue.copy(
                    from: out, ld: outVolume, to: out, ldOut: outVolume, rows: groupOut, length: outVolume,
                    bias: bias.map { $0 + g * groupOut }, activation: activation)
            }
        }
    }
}

/// Bias and fused activation over the [channel, spatial] rows that a convolution produced,
/// applied while copying them from `source` (rows `ld` apart) to `out` (rows `ldOut` apart);
/// `source` may equal `out`.
enum ConvEpilogue {
    static func copy(
        from source: UnsafePointer<Float>, ld: Int, to out: UnsafeMutablePointer<Float>, ldOut: Int, rows: Int, length: Int,
        bias: UnsafeMutablePointer<Float>?, activation: Activation?
    ) {
        let inPlace = source == UnsafePointer(out) && ld == ldOut
        if inPlace, bias == nil, activation == nil { return }
        let (low, high) = activation?.bounds ?? (-Float.infinity, Float.infinity)
        Parallel.forEachChunk(count: rows, work: rows * length) { chunk in
            for row in chunk {
                let b = bias?[row] ?? 0
                let s = source + row * ld
                let p = out + row * ldOut
                if activation == nil {
                    for i in 0..<length { p[i] = s[i] + b }
                } else if activation == .relu {
                    for i in 0..<length { p[i] = max(s[i] + b, 0) }
                } else {
                    for i in 0..<length { p[i] = min(max(s[i] + b, low), high) }
                }
            }
        }
    }
}
