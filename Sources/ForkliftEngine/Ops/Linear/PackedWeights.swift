import Foundation

/// A constant right-hand operand W of Y = X·W (K inputs, N outputs), packed once at load with
/// alpha folded in, so that a run neither transposes, scales nor repacks it.
///
/// Why not sgemm on a pre-transposed W: OpenBLAS repacks both operands on every call, and at the
/// small M of inference that repacking of W is 55–75% of the time (perf, OpenBLAS 0.3.21), and
/// more when other processes share the memory bus. `PanelKernel` streams W once per run instead.
struct PackedWeights: @unchecked Sendable {
    let n: Int
    let k: Int
    /// Owns the panels.
    let storage: Tensor

    /// Packs `alpha`·W from `b`, which holds W as [K, N] (`transposed` false) or [N, K] (true).
    init?(_ b: Tensor, transposed: Bool, alpha: Float) {
        guard b.dtype == .float32, b.shape.count == 2 else { return nil }
        let (n, k) = transposed ? (b.shape[0], b.shape[1]) : (b.shape[1], b.shape[0])
        guard n > 0, k > 0, n <= LinearBLAS.maxDimension, k <= LinearBLAS.maxDimension else { return nil }
        self.n = n
        self.k = k
        storage = Tensor(dtype: .float32, shape: [PanelKernel.packedCount(n: n, k: k)])
        PanelKernel.pack(b.floats, n: n, k: k, transposed: transposed, alpha: alpha, into: storage.floats)
    }

    /// Y[M, N] = op(A)·W (+ Y when `accumulate`) + bias row, then the activation.
    /// op(A) is A [M, K] with row stride `lda`, or with `transA` A [K, M] with row stride `lda`.
    func multiply(
        a: UnsafePointer<Float>, m: Int, transA: Bool, lda: Int, y: UnsafeMutablePointer<Float>,
        accumulate: Bool, epilogue: Epilogue
    ) {
        guard m > 0 else { return }
        let w = UnsafePointer(storage.floats)
        if transA {
            withUnsafeTemporaryAllocation(of: Float.self, capacity: m * k) { buffer in
                guard let x = buffer.baseAddress else { return }
                for kk in 0..<k {
                    let source = a + kk * lda
                    for row in 0..<m { x[row * k + kk] = source[row] }
                }
                PanelKernel.multiply(
                    UnsafePointer(x), ldx: k, m: m, panels: w, n: n, k: k, y, accumulate: accumulate, epilogue: epilogue)
            }
        } else {
            PanelKernel.multiply(a, ldx: lda, m: m, panels: w, n: n, k: k, y, accumulate: accumulate, epilogue: epilogue)
        }
    }
}

/// What follows a product: a bias row added to every output row, then an activation, in one pass.
struct Epilogue {
    /// N floats, or nil.
    var bias: UnsafePointer<Float>?
    var activation: Activation?

    private var bounds: (low: Float, high: Float)? { activation?.bounds }

    /// y[r, j] = act(y[r, j] + bias[j]) in place.
    func finishRows(_ y: UnsafeMutablePointer<Float>, rows: Int, n: Int) {
        finish(y, rows: rows, n: n, columns: 0..<n)
    }

    /// The same for the columns `columns` of every row only.
    func finish(_ y: UnsafeMutablePointer<Float>, rows: Int, n: Int, columns: Range<Int>) {
        if bias == nil, activation == nil { return }
        let bounds = bounds
        for row in 0..<rows { finish(y + row * n, from: columns.lowerBound, to: columns.upperBound, bounds: bounds) }
    }

    /// out[j] = act(out[j] + bias[j]) for j in j0..<j1; the branches sit outside the loops so that they vectorise.
    @inline(__always)
    private func finish(_ out: UnsafeMutablePointer<Float>, from j0: Int, to j1: Int, bounds: (low: Float, high: Float)?) {
        if let bias {
            if let (low, high) = bounds {
                for j in j0..<j1 { out[j] = Swift.min(Swift.max(out[j] + bias[j], low), high) }
            } else {
                for j in j0..<j1 { out[j] += bias[j] }
            }
        } else if let (low, high) = bounds {
            for j in j0..<j1 { out[j] = Swift.min(Swift.max(out[j], low), high) }
        }
    }
}
