import Foundation

/// NumPy matmul: 1-D operands are promoted to matrices and the leading dimensions broadcast.
/// A constant 2-D B (a Linear layer's weight) is packed at load (see `PackedWeights`).
struct MatMulKernel: Kernel {
    let activation: Activation?
    let weights: PackedWeights?

    /// A packed B is read from `weights` only; runs look at B's shape, never its data.
    var absorbedInputs: [Int] { weights == nil ? [] : [1] }

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 2...2)
        try ctx.allowAttributes([])
        let weights = ctx.constant(1).flatMap { PackedWeights($0, transposed: false, alpha: 1) }
        return MatMulKernel(activation: ctx.fusedActivation, weights: weights)
    }

    /// The product's geometry: batch dims of each operand (as matrices), M, N, K, and output shape.
    struct Plan {
        var batchA: [Int]
        var batchB: [Int]
        var batch: [Int]
        var m: Int
        var n: Int
        var k: Int
        var outputShape: [Int]
        var batchCount: Int { batch.reduce(1, *) }
    }

    static func plan(_ a: [Int], _ b: [Int]) throws(KernelError) -> Plan {
        guard !a.isEmpty, !b.isEmpty else {
            throw .invalid("MatMul operands must have rank ≥ 1, got A \(Shape.describe(a)) and B \(Shape.describe(b))")
        }
        let matA = a.count == 1 ? [1, a[0]] : a
        let matB = b.count == 1 ? [b[0], 1] : b
        let m = matA[matA.count - 2]
        let k = matA[matA.count - 1]
        let n = matB[matB.count - 1]
        guard matB[matB.count - 2] == k else {
            throw .invalid("inner dimensions differ: A \(Shape.describe(a)) and B \(Shape.describe(b))")
        }
        let batchA = Array(matA.dropLast(2))
        let batchB = Array(matB.dropLast(2))
        guard let batch = Shape.broadcast(batchA, batchB) else {
            throw .invalid("batch dimensions of A \(Shape.describe(a)) and B \(Shape.describe(b)) do not broadcast")
        }
        var outputShape = batch
        if a.count > 1 { outputShape.append(m) }
        if b.count > 1 { outputShape.append(n) }
        guard Shape.elementCount(batch + [m, n]) != nil else {
            throw .invalid("output of A \(Shape.describe(a)) × B \(Shape.describe(b)) is too large")
        }
        return Plan(batchA: batchA, batchB: batchB, batch: batch, m: m, n: n, k: k, outputShape: outputShape)
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        try inputs[0].require([.float32], "A")
        try inputs[1].require([.float32], "B")
        return [TensorType(.float32, try Self.plan(inputs[0].shape, inputs[1].shape).outputShape)]
    }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let plan = try Self.plan(inputs[0].shape, inputs[1].shape)
        let a = inputs[0].floats
        let b = inputs[1].floats
        let y = outputs[0].floats
        let (m, n, k) = (plan.m, plan.n, plan.k)
        if plan.batchB.reduce(1, *) == 1 {
            // B is one matrix (a Linear layer's weight): all of A's rows go through one sgemm.
            let rows = plan.batchA.reduce(1, *) * m
            try LinearBLAS.checkDimensions(rows, n, k)
            if let weights, inputs[1].shape.count == 2 {
                weights.multiply(
                    a: a, m: rows, transA: false, lda: k, y: y, accumulate: false,
                    epilogue: Epilogue(bias: nil, activation: activation))
                return
            }
            LinearBLAS.sgemm(
                transA: false, transB: false, m: rows, n: n, k: k, alpha: 1, a: a, lda: k, b: b, ldb: n, beta: 0,
                c: y, ldc: n)
        } else {
            try LinearBLAS.checkDimensions(m, n, k)
            let rank = plan.batch.count
            let stridesA = Self.broadcastStrides(plan.batchA, rank: rank, matrixSize: m * k)
            let stridesB = Self.broadcastStrides(plan.batchB, rank: rank, matrixSize: k * n)
            var index = [Int](repeating: 0, count: rank)
            var offsetA = 0
            var offsetB = 0
            for product in 0..<plan.batchCount {
                LinearBLAS.sgemm(
                    transA: false, transB: false, m: m, n: n, k: k, alpha: 1, a: a + offsetA, lda: k, b: b + offsetB,
                    ldb: n, beta: 0, c: y + product * m * n, ldc: n)
                // Odometer step over the broadcast batch index.
                var axis = rank - 1
                while axis >= 0 {
                    index[axis] += 1
                    offsetA += stridesA[axis]
                    offsetB += stridesB[axis]
                    if index[axis] < plan.batch[axis] { break }
                    offsetA -= stridesA[axis] * index[axis]
                    offsetB -= stridesB[axis] * index[axis]
                    index[axis] = 0
                    axis -= 1
                }
            }
        }
        Epilogue(bias: nil, activation: activation).finishRows(y, rows: 1, n: outputs[0].count)
    }

    /// Element strides of an operand's batch dims, right-aligned to `rank`, 0 where it broadcasts.
    private static func broadcastStrides(_ dims: [Int], rank: Int, matrixSize: Int) -> [Int] {
        var strides = [Int](repeating: 0, count: rank)
        var acc = matrixSize
        for i in stride(from: dims.count - 1, through: 0, by: -1) {
            let axis = i + rank - dims.count
            strides[axis] = dims[i] == 1 ? 0 : acc
            acc *= dims[i]
        }
        return strides
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int {
        guard let plan = try? Self.plan(inputs[0].shape, inputs[1].shape) else { return 0 }
        return 2 * plan.batchCount * plan.m * plan.n * plan.k
    }
}
