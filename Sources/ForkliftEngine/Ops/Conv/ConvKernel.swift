import COpenBLAS
import Foundation

/// Conv over float32 NCHW (1 to 3 spatial dimensions). Three paths: a 1×1 stride-1 unpadded
/// convolution is a GEMM on the input as it lies; a depthwise convolution (one input channel per
/// group) is a direct loop; everything else is im2col followed by one GEMM per image and group.
/// The weights [M, C/g, k…] are already g contiguous [M/g, C/g·k…] matrices, so they need no packing.
struct ConvKernel: Kernel {
    let window: WindowAttributes
    let group: Int
    let activation: Activation?
    /// The weights when constant, kept so that the session can drop its own reference.
    let constantWeight: Tensor?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 2...3)
        try ctx.allowAttributes(["auto_pad", "dilations", "group", "kernel_shape", "pads", "strides"])
        let group = try ctx.int("group", default: 1)
        guard group >= 1 else { throw .invalid("attribute 'group' = \(group) must be positive") }
        let weight = ctx.constant(1)
        if let weight, weight.dtype != .float32 { throw .unsupported("input W has dtype \(weight.dtype)") }
        return ConvKernel(window: try WindowAttributes(ctx), group: group, activation: ctx.fusedActivation, constantWeight: weight)
    }

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

        let k = groupIn * w.kernelVolume
        let pointwise = w.kernel == SIMD3(1, 1, 1) && w.stride == SIMD3(1, 1, 1) && w.padBegin == .zero && w.padEnd == .zero
        var scratch: UnsafeMutablePointer<Float>? = nil
        if !pointwise {
            let (size, overflow) = k.multipliedReportingOverflow(by: outVolume)
            guard !overflow, size <= Shape.maxElements else { throw .invalid("im2col buffer of \(k)×\(outVolume) is too large") }
            scratch = UnsafeMutablePointer<Float>.allocate(capacity: max(size, 1))
        }
        defer { scratch?.deallocate() }
        for n in 0..<plan.batch {
            for g in 0..<group {
                let source = x + (n * plan.inChannels + g * groupIn) * inVolume
                let columns: UnsafeMutablePointer<Float>
                if let scratch {
                    Im2col.fill(scratch, from: source, channels: groupIn, window: w)
                    columns = scratch
                } else {
                    columns = source
                }
                let out = y + (n * plan.outChannels + g * groupOut) * outVolume
                if k == 0 {
                    for i in 0..<(groupOut * outVolume) { out[i] = 0 }
                } else {
                    cblas_sgemm(
                        CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(groupOut), Int32(outVolume), Int32(k), 1,
                        weight + g * groupOut * k, Int32(k), columns, Int32(outVolume), 0, out, Int32(outVolume))
                }
                Epilogue.apply(out, rows: groupOut, length: outVolume, bias: bias.map { $0 + g * groupOut }, activation: activation)
            }
        }
    }
}

/// Bias and fused activation over the rows [channel, spatial] that a convolution produced.
enum Epilogue {
    static func apply(
        _ out: UnsafeMutablePointer<Float>, rows: Int, length: Int, bias: UnsafeMutablePointer<Float>?, activation: Activation?
    ) {
        guard bias != nil || activation != nil else { return }
        var low = -Float.infinity
        var high = Float.infinity
        switch activation {
        case .relu?: low = 0
        case .clip(let lo, let hi)?: (low, high) = (lo, hi)
        case nil: break
        }
        for row in 0..<rows {
            let b = bias?[row] ?? 0
            let p = out + row * length
            if activation == nil {
                for i in 0..<length { p[i] += b }
            } else {
                for i in 0..<length { p[i] = min(max(p[i] + b, low), high) }
            }
        }
    }
}

/// Lays out the receptive fields of one image's channels as a [C·kvol, outVolume] matrix.
enum Im2col {
    static func fill(_ col: UnsafeMutablePointer<Float>, from x: UnsafePointer<Float>, channels: Int, window w: Window) {
        let (inD, inH, inW) = (w.input[0], w.input[1], w.input[2])
        let (outD, outH, outW) = (w.output[0], w.output[1], w.output[2])
        let (kD, kH, kW) = (w.kernel[0], w.kernel[1], w.kernel[2])
        let strideW = w.stride[2]
        let outVolume = w.outputVolume
        var row = col
        for c in 0..<channels {
            let plane = x + c * w.inputVolume
            for kd in 0..<kD {
                for kh in 0..<kH {
                    for kw in 0..<kW {
                        let offW = kw * w.dilation[2] - w.padBegin[2]
                        let valid = w.outputs(2, offset: offW)
                        var dst = row
                        for od in 0..<outD {
                            let id = od * w.stride[0] - w.padBegin[0] + kd * w.dilation[0]
                            for oh in 0..<outH {
                                let ih = oh * w.stride[1] - w.padBegin[1] + kh * w.dilation[1]
                                if id < 0 || id >= inD || ih < 0 || ih >= inH || valid.isEmpty {
                                    dst.update(repeating: 0, count: outW)
                                } else {
                                    let src = plane + (id * inH + ih) * inW + offW
                                    if valid.lowerBound > 0 { dst.update(repeating: 0, count: valid.lowerBound) }
                                    if strideW == 1 {
                                        (dst + valid.lowerBound).update(from: src + valid.lowerBound, count: valid.count)
                                    } else {
                                        for o in valid { dst[o] = src[o * strideW] }
                                    }
                                    if valid.upperBound < outW {
                                        (dst + valid.upperBound).update(repeating: 0, count: outW - valid.upperBound)
                                    }
                                }
                                dst += outW
                            }
                        }
                        row += outVolume
                    }
                }
            }
        }
    }
}
