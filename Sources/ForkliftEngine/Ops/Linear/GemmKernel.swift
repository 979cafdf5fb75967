import Foundation

/// Y = alpha·op(A)·op(B) + beta·C with C broadcast unidirectionally to [M, N].
/// A constant B is packed at load with alpha folded in (see `PackedWeights`), and a constant C
/// that is one row (or a scalar) becomes a bias row with beta folded in, added in the same pass as
/// the fused activation.
struct GemmKernel: Kernel {
    let transA: Bool
    let transB: Bool
    let alpha: Float
    let beta: Float
    let hasC: Bool
    /// Constant B, packed and scaled by alpha.
    let weights: PackedWeights?

    /// A packed B is read from `weights` only; runs look at B's shape, never its data.
    var absorbedInputs: [Int] { weights == nil ? [] : [1] }
    /// Constant C scaled by beta and broadcast to N floats, when it is a single row and B is constant.
    let biasRow: Tensor?
    /// Constant C scaled by beta, when C is constant.
    let packedC: Tensor?
    let activation: Activation?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        // C is required before opset 11; accepting its absence there costs nothing.
        try ctx.expect(inputs: 2...3)
        var allowed: Set<String> = ["alpha", "beta", "transA", "transB"]
        // Opsets before 7 spell out whether C broadcasts; this engine always broadcasts.
        if ctx.opset < 7 { allowed.insert("broadcast") }
        try ctx.allowAttributes(allowed)
        let alpha = try ctx.float("alpha", default: 1)
        let beta = try ctx.float("beta", default: 1)
        let transA = try ctx.int("transA", default: 0) != 0
        let transB = try ctx.int("transB", default: 0) != 0
        let hasC = ctx.hasInput(2)

        let weights = ctx.constant(1).flatMap { PackedWeights($0, transposed: transB, alpha: alpha) }
        var packedC: Tensor?
        var biasRow: Tensor?
        if hasC, beta != 0, let c = ctx.constant(2), c.dtype == .float32 {
            packedC = beta == 1 ? c : Self.scaled(c, by: beta)
            if let weights, let row = packedC, let layout = try? biasLayout(c.shape, m: 1, n: weights.n) {
                if layout.cols == weights.n {
                    biasRow = row
                } else {
                    let expanded = Tensor(dtype: .float32, shape: [weights.n])
                    expanded.floats.update(repeating: row.floats[0], count: weights.n)
                    biasRow = expanded
                }
            }
        }
        return GemmKernel(
            transA: transA, transB: transB, alpha: alpha, beta: beta, hasC: hasC, weights: weights,
            biasRow: biasRow, packedC: packedC, activation: ctx.fusedActivation)
    }

    private static func scaled(_ t: Tensor, by factor: Float) -> Tensor {
        let result = t.copy()
        let data = result.floats
        for i in 0..<result.count { data[i] *= factor }
        return result
    }

    /// M, N, K of the product, after checking the operands.
    private func dimensions(_ a: [Int], _ b: [Int]) throws(KernelError) -> (m: Int, n: Int, k: Int) {
        guard a.count == 2, b.count == 2 else {
            throw .invalid("A and B must be 2-D, got A \(Shape.describe(a)) and B \(Shape.describe(b))")
        }
        let (m, k) = transA ? (a[1], a[0]) : (a[0], a[1])
        let (kB, n) = transB ? (b[1], b[0]) : (b[0], b[1])
        guard k == kB else {
            throw .invalid(
                "inner dimensions differ: A \(Shape.describe(a))\(transA ? "ᵀ" : "") and B \(Shape.describe(b))\(transB ? "ᵀ" : "")"
            )
        }
        try LinearBLAS.checkDimensions(m, n, k)
        return (m, n, k)
    }

    /// Rows and columns of C as stored (each 1 or the output's), or throws when C does not broadcast.
    private static func biasLayout(_ c: [Int], m: Int, n: Int) throws(KernelError) -> (rows: Int, cols: Int) {
        guard c.count <= 2 else { throw .invalid("C must have rank ≤ 2, got \(Shape.describe(c))") }
        let rows = c.count == 2 ? c[0] : 1
        let cols = c.count >= 1 ? c[c.count - 1] : 1
        guard rows == 1 || rows == m, cols == 1 || cols == n else {
            throw .invalid("C \(Shape.describe(c)) does not broadcast to [\(m), \(n)]")
        }
        return (rows, cols)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        try inputs[0].require([.float32], "A")
        try inputs[1].require([.float32], "B")
        let (m, n, _) = try dimensions(inputs[0].shape, inputs[1].shape)
        if hasC, inputs.count > 2, !inputs[2].isAbsent {
            try inputs[2].require([.float32], "C")
            _ = try Self.biasLayout(inputs[2].shape, m: m, n: n)
        }
        return [TensorType(.float32, [m, n])]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let a = inputs[0]
        let (m, n, k) = try dimensions(a.shape, inputs[1].shape)
        let out = outputs[0]
        let y = out.floats
        let biased = hasC && beta != 0 && inputs.count > 2 && !inputs[2].isAbsent
        if let weights {
            var epilogue = Epilogue(bias: nil, activation: activation)
            var accumulate = false
            if biased {
                let (rows, cols) = try Self.biasLayout(inputs[2].shape, m: m, n: n)
                if let biasRow, rows == 1 {
                    epilogue.bias = UnsafePointer(biasRow.floats)
                } else {
                    let c = packedC ?? inputs[2]
                    Self.fill(y, m: m, n: n, from: c.floats, rows: rows, cols: cols, scale: packedC == nil ? beta : 1)
                    accumulate = true
                }
            }
            weights.multiply(
                a: a.floats, m: m, transA: transA, lda: a.shape[1], y: y, accumulate: accumulate, epilogue: epilogue)
            return
        }
        var betaRun: Float = 0
        if biased {
            let c = packedC ?? inputs[2]
            let (rows, cols) = try Self.biasLayout(c.shape, m: m, n: n)
            Self.fill(y, m: m, n: n, from: c.floats, rows: rows, cols: cols, scale: 1)
            betaRun = packedC == nil ? beta : 1
        }
        let b = inputs[1]
        LinearBLAS.sgemm(
            transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha, a: a.floats, lda: a.shape[1],
            b: b.floats, ldb: b.shape[1], beta: betaRun, c: y, ldc: n)
        Epilogue(bias: nil, activation: activation).finishRows(y, rows: m, n: n)
    }

    /// Broadcasts scale·C into every output row.
    private static func fill(
        _ y: UnsafeMutablePointer<Float>, m: Int, n: Int, from c: UnsafeMutablePointer<Float>, rows: Int, cols: Int,
        scale: Float
    ) {
        for row in 0..<m {
            let source = c + (rows == 1 ? 0 : row * cols)
            let target = y + row * n
            if cols == n {
                if scale == 1 {
                    target.update(from: source, count: n)
                } else {
                    for j in 0..<n { target[j] = source[j] * scale }
                }
            } else {
                target.update(repeating: source[0] * scale, count: n)
            }
        }
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int {
        guard let (m, n, k) = try? dimensions(inputs[0].shape, inputs[1].shape) else { return 0 }
        return 2 * m * n * k
    }
}
