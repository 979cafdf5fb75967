import Foundation

/// Softmax and LogSoftmax, each stabilised by subtracting the maximum along the reduced extent.
/// Before opset 13 the input is coerced to 2-D at `axis` and the operator reduces over all the
/// trailing dims at once; from 13 on it reduces along the one axis.
struct SoftmaxKernel: Kernel {
    let isLog: Bool
    let axis: Int
    let coerces2D: Bool

    static func make(log: Bool) -> KernelFactory {
        return { ctx throws(KernelError) in
            try ctx.expect(inputs: 1...1)
            try ctx.allowAttributes(["axis"])
            let coerces = ctx.opset < 13
            let axis = try ctx.int("axis", default: coerces ? 1 : -1)
            return SoftmaxKernel(isLog: log, axis: axis, coerces2D: coerces)
        }
    }

    /// The input as [outer, n, inner]: the softmax runs over n for each (outer, inner) pair.
    private func geometry(_ shape: [Int]) throws(KernelError) -> (outer: Int, n: Int, inner: Int) {
        let rank = shape.count
        if coerces2D {
            let resolved = axis < 0 ? axis + rank : axis
            guard resolved >= 0, resolved <= rank else {
                throw .invalid("axis \(axis) is out of range for rank \(rank)")
            }
            return (shape[..<resolved].reduce(1, *), shape[resolved...].reduce(1, *), 1)
        }
        guard rank > 0 else { return (1, 1, 1) }
        let resolved = try Shape.axis(axis, rank: rank)
        return (shape[..<resolved].reduce(1, *), shape[resolved], shape[(resolved + 1)...].reduce(1, *))
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        try inputs[0].require([.float32], "input")
        _ = try geometry(inputs[0].shape)
        return [inputs[0]]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let input = inputs[0]
        guard input.count > 0 else { return }
        let (outer, n, inner) = try geometry(input.shape)
        let x = input.floats
        let y = outputs[0].floats
        if inner == 1 {
            for row in 0..<outer {
                rowSoftmax(x + row * n, y + row * n, n: n)
            }
        } else {
            let scratch = UnsafeMutablePointer<Float>.allocate(capacity: 2 * inner)
            defer { scratch.deallocate() }
            for block in 0..<outer {
                let offset = block * n * inner
                stridedSoftmax(x + offset, y + offset, n: n, inner: inner, scratch: scratch)
            }
        }
    }

    private func rowSoftmax(_ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int) {
        let peak = ReductionMath.maximum(x, count: n)
        let total = ReductionMath.shiftedExp(x, y, count: n, shift: peak)
        if isLog {
            let shift = peak + Foundation.log(total)
            for i in 0..<n { y[i] = x[i] - shift }
        } else {
            let scale = 1 / total
            for i in 0..<n { y[i] *= scale }
        }
    }

    /// One [n, inner] block, reducing over n with all `inner` lanes side by side.
    private func stridedSoftmax(
        _ x: UnsafeMutablePointer<Float>, _ y: UnsafeMutablePointer<Float>, n: Int, inner: Int,
        scratch: UnsafeMutablePointer<Float>
    ) {
        let peak = scratch
        let total = scratch + inner
        peak.update(from: x, count: inner)
        for j in 1..<max(n, 1) {
            let row = x + j * inner
            for t in 0..<inner { peak[t] = row[t] > peak[t] ? row[t] : peak[t] }
        }
        total.update(repeating: 0, count: inner)
        for j in 0..<n {
            let source = x + j * inner
            let target = y + j * inner
            for t in 0..<inner {
                let e = FastMath.exp(source[t] - peak[t])
                target[t] = e
                total[t] += e
            }
        }
        if isLog {
            for t in 0..<inner { peak[t] += Foundation.log(total[t]) }
            for j in 0..<n {
                let source = x + j * inner
                let target = y + j * inner
                for t in 0..<inner { target[t] = source[t] - peak[t] }
            }
        } else {
            for t in 0..<inner { total[t] = 1 / total[t] }
            for j in 0..<n {
                let target = y + j * inner
                for t in 0..<inner { target[t] *= total[t] }
            }
        }
    }
}
