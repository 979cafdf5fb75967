import Foundation

struct TransposeKernel: Kernel {
    let perm: [Int]?

    static func make(_ ctx: NodeContext) throws(KernelError) -> any Kernel {
        try ctx.expect(inputs: 1...1)
        try ctx.allowAttributes(["perm"])
        return TransposeKernel(perm: try ctx.ints("perm"))
    }

    private func resolvedPerm(rank: Int) throws(KernelError) -> [Int] {
        guard let perm else { return Array((0..<rank).reversed()) }
        guard perm.count == rank, perm.sorted() == Array(0..<rank) else {
            throw .invalid("perm \(perm) is not a permutation of the \(rank) input axes")
        }
        return perm
    }

    func outputTypes(_ inputs: [TensorType], values: [Tensor?]) throws(KernelError) -> [TensorType] {
        let shape = inputs[0].shape
        return [TensorType(inputs[0].dtype, try resolvedPerm(rank: shape.count).map { shape[$0] })]
    }

    func flops(_ inputs: [TensorType], _ outputs: [TensorType]) -> Int { 0 }

    func run(_ inputs: [Tensor], _ outputs: [Tensor]) throws(KernelError) {
        let input = inputs[0]
        let output = outputs[0]
        let byteSize = input.dtype.byteSize
        guard input.count > 0 else { return }
        let (shape, perm) = Self.simplify(shape: input.shape, perm: try resolvedPerm(rank: input.rank))
        let rank = shape.count
        if perm == Array(0..<rank) {
            output.raw.copyMemory(from: input.raw, byteCount: input.byteCount)
            return
        }
        let inStrides = Shape.strides(shape)
        let outShape = perm.map { shape[$0] }
        let outStrides = Shape.strides(outShape)
        let last = rank - 1
        // The two innermost loops: contiguous runs when the input's last axis stays last,
        // otherwise a blocked 2-D transpose between the output's last axis and the output axis
        // that walks the input contiguously.
        let contiguousAxis = perm.firstIndex(of: last) ?? last
        let innerAxes: Set<Int> = perm[last] == last ? [last] : [last, contiguousAxis]
        let outerAxes = (0..<rank).filter { !innerAxes.contains($0) }
        let outerDims = outerAxes.map { outShape[$0] }
        let outerIn = outerAxes.map { inStrides[perm[$0]] }
        let outerOut = outerAxes.map { outStrides[$0] }
        let outerCount = outerDims.reduce(1, *)
        var index = [Int](repeating: 0, count: outerAxes.count)
        var inOffset = 0
        var outOffset = 0
        for _ in 0..<outerCount {
            let source = input.raw + inOffset * byteSize
            let destination = output.raw + outOffset * byteSize
            if perm[last] == last {
                destination.copyMemory(from: source, byteCount: shape[last] * byteSize)
            } else {
                ByteCopy.transpose2D(
                    destination, destinationRowStride: outStrides[contiguousAxis], source,
                    sourceRowStride: inStrides[perm[last]], rows: outShape[last], columns: outShape[contiguousAxis],
                    byteSize: byteSize)
            }
            var axis = outerAxes.count - 1
            while axis >= 0 {
                index[axis] += 1
                inOffset += outerIn[axis]
                outOffset += outerOut[axis]
                if index[axis] < outerDims[axis] { break }
                inOffset -= outerIn[axis] * outerDims[axis]
                outOffset -= outerOut[axis] * outerDims[axis]
                index[axis] = 0
                axis -= 1
            }
        }
    }

    /// Drops size-1 axes and merges input axes that stay adjacent and in order, so that the
    /// loops run over as few and as long dimensions as possible.
    static func simplify(shape: [Int], perm: [Int]) -> (shape: [Int], perm: [Int]) {
        let kept = (0..<shape.count).filter { shape[$0] != 1 }
        var newIndex = [Int](repeating: -1, count: shape.count)
        for (position, axis) in kept.enumerated() { newIndex[axis] = position }
        let reducedPerm = perm.compactMap { newIndex[$0] >= 0 ? newIndex[$0] : nil }
        let reducedShape = kept.map { shape[$0] }
        // Groups of consecutive input axes, in output order.
        var groups: [[Int]] = []
        for axis in reducedPerm {
            if let lastAxis = groups.last?.last, lastAxis + 1 == axis {
                groups[groups.count - 1].append(axis)
            } else {
                groups.append([axis])
            }
        }
        let byInput = groups.indices.sorted { groups[$0][0] < groups[$1][0] }
        var groupPosition = [Int](repeating: 0, count: groups.count)
        for (position, group) in byInput.enumerated() { groupPosition[group] = position }
        let mergedShape = byInput.map { groups[$0].reduce(1) { $0 * reducedShape[$1] } }
        let mergedPerm = groups.indices.map { groupPosition[$0] }
        return (mergedShape, mergedPerm)
    }
}
