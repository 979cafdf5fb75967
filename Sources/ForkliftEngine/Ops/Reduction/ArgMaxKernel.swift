import Foundation

/// Index of the largest element along `axis`, as int64; ties go to the first index, or to the
/// last with `select_last_index`.
struct ArgMaxKernel: Kernel {
    let axis: Int
    let keepdims: Bool
    let selectLast: Bool

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(["axis", "keepdims", "select_last_index"])
        return ArgMaxKernel(
            axis: try ctx.int("axis", default: 0), keepdims: try ctx.int("keepdims", default: 1) != 0,
            selectLast: try ctx.int("select_last_index", default: 0) != 0)
    }

    private func geometry(_ shape: [Int]) throws(KernelError) -> (outer: Int, n: Int, inner: Int, axis: Int) {
        let resolved = try Shape.axis(axis, rank: shape.count)
        guard !shape.isEmpty else { return (1, 1, 1, 0) }
        guard shape[resolved] > 0 else {
            throw .invalid("ArgMax over an empty axis \(axis) of \(Shape.describe(shape))")
        }
        return (shape[..<resolved].reduce(1, *), shape[resolved], shape[(resolved + 1)...].reduce(1, *), resolved)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        try inputs[0].require([.float32, .int64, .int32], "input")
        let shape = inputs[0].shape
        let (_, _, _, resolved) = try geometry(shape)
        guard !shape.isEmpty else { return [TensorType(.int64, [])] }
        var out = shape
        if keepdims { out[resolved] = 1 } else { out.remove(at: resolved) }
        return [TensorType(.int64, out)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let input = inputs[0]
        let (outer, n, inner, _) = try geometry(input.shape)
        let out = outputs[0].int64s
        switch input.dtype {
        case .float32: Self.argmax(input.floats, out, outer: outer, n: n, inner: inner, selectLast: selectLast)
        case .int64: Self.argmax(input.int64s, out, outer: outer, n: n, inner: inner, selectLast: selectLast)
        case .int32:
            Self.argmax(input.pointer(as: Int32.self), out, outer: outer, n: n, inner: inner, selectLast: selectLast)
        default: throw .unsupported("input has dtype \(input.dtype)")
        }
    }

    @inline(__always)
    private static func better<T: Comparable>(_ value: T, than best: T, selectLast: Bool) -> Bool {
        selectLast ? value >= best : value > best
    }

    private static func argmax<T: Comparable>(
        _ x: UnsafeMutablePointer<T>, _ out: UnsafeMutablePointer<Int64>, outer: Int, n: Int, inner: Int,
        selectLast: Bool
    ) {
        guard outer > 0, inner > 0 else { return }
        if inner == 1 {
            for row in 0..<outer {
                let values = x + row * n
                var best = values[0]
                var index = 0
                for j in 1..<max(n, 1) where better(values[j], than: best, selectLast: selectLast) {
                    best = values[j]
                    index = j
                }
                out[row] = Int64(index)
            }
            return
        }
        let best = UnsafeMutablePointer<T>.allocate(capacity: inner)
        defer { best.deallocate() }
        for block in 0..<outer {
            let base = x + block * n * inner
            let target = out + block * inner
            best.initialize(from: base, count: inner)
            target.update(repeating: 0, count: inner)
            for j in 1..<max(n, 1) {
                let row = base + j * inner
                for t in 0..<inner where better(row[t], than: best[t], selectLast: selectLast) {
                    best[t] = row[t]
                    target[t] = Int64(j)
                }
            }
        }
    }
}
