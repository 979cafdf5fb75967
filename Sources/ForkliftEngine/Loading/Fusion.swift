import Foundation

/// Graph rewrites that remove whole ops: BatchNormalization folded into the Conv or Gemm before
/// it, a Linear layer's MatMul + bias Add turned into one Gemm, and Relu/Clip fused into the op
/// before them as an epilogue.
enum Fusion {
    /// `rank` gives a value's rank where shape inference knows it.
    static func apply(_ graph: inout GraphIR, rank: (String) -> Int?) {
        foldBatchNorms(&graph)
        fuseLinearBias(&graph, rank: rank)
        fuseActivations(&graph)
    }

    // MARK: MatMul + Add

    /// MatMul(A, B) + C with A of rank 2, B a constant [K, N] and C a constant [N] or [1, N] is
    /// Gemm(A, B, C): the bias then rides in the GEMM's epilogue, and a Relu after it fuses too.
    private static func fuseLinearBias(_ graph: inout GraphIR, rank: (String) -> Int?) {
        var index = 0
        while index < graph.nodes.count {
            let add = graph.nodes[index]
            if add.opType == "Add", add.domain.isEmpty, add.inputs.count == 2, add.outputs.count == 1,
                let (producerIndex, biasName) = linearProducer(of: add, in: graph, rank: rank)
            {
                let matmul = graph.nodes[producerIndex]
                graph.nodes[producerIndex] = NodeIR(
                    name: matmul.name, opType: "Gemm", domain: "", inputs: [matmul.inputs[0], matmul.inputs[1], biasName],
                    outputs: add.outputs, attributes: [:], fusedActivation: nil)
                graph.nodes.remove(at: index)
                continue
            }
            index += 1
        }
    }

    private static func linearProducer(of add: NodeIR, in graph: GraphIR, rank: (String) -> Int?) -> (Int, String)? {
        for (valueSide, biasSide) in [(0, 1), (1, 0)] {
            guard let bias = graph.constants[add.inputs[biasSide]], bias.dtype == .float32,
                let producerIndex = soleProducer(of: add.inputs[valueSide], in: graph)
            else { continue }
            let matmul = graph.nodes[producerIndex]
            guard matmul.opType == "MatMul", matmul.domain.isEmpty, matmul.fusedActivation == nil,
                matmul.inputs.count == 2, rank(matmul.inputs[0]) == 2,
                let weight = graph.constants[matmul.inputs[1]], weight.dtype == .float32, weight.rank == 2
            else { continue }
            let n = weight.shape[1]
            guard bias.shape == [n] || bias.shape == [1, n] else { continue }
            return (producerIndex, add.inputs[biasSide])
        }
        return nil
    }

    // MARK: BatchNormalization

    private static func foldBatchNorms(_ graph: inout GraphIR) {
        var index = 0
        while index < graph.nodes.count {
            let node = graph.nodes[index]
            if node.opType == "BatchNormalization", node.domain.isEmpty,
                let producerIndex = soleProducer(of: node.inputs[0], in: graph),
                let folded = foldedProducer(graph.nodes[producerIndex], into: node, graph: &graph)
            {
                graph.nodes[producerIndex] = folded
                graph.nodes.remove(at: index)
                continue
            }
            index += 1
        }
    }

    /// Per-channel scale s = γ/√(σ²+ε) and shift t = β − μ·s of an inference BatchNormalization.
    private static func affine(of bn: NodeIR, graph: GraphIR) -> (scale: [Float], shift: [Float])? {
        guard bn.outputs.count == 1, bn.inputs.count == 5 else { return nil }
        if case .int(let spatial)? = bn.attributes["spatial"], spatial == 0 { return nil }
        if case .int(let training)? = bn.attributes["training_mode"], training != 0 { return nil }
        var epsilon: Float = 1e-5
        if case .float(let value)? = bn.attributes["epsilon"] { epsilon = value }
        let params = bn.inputs[1...4].map { graph.constants[$0] }
        guard params.allSatisfy({ $0?.dtype == .float32 && $0?.rank == 1 }) else { return nil }
        let arrays = params.compactMap { $0?.floatArray() }
        let channels = arrays[0].count
        guard arrays.count == 4, arrays.allSatisfy({ $0.count == channels }) else { return nil }
        var scale = [Float](repeating: 0, count: channels)
        var shift = [Float](repeating: 0, count: channels)
        for c in 0..<channels {
            scale[c] = arrays[0][c] / (arrays[3][c] + epsilon).squareRoot()
            shift[c] = arrays[1][c] - arrays[2][c] * scale[c]
        }
        return (scale, shift)
    }

    private static func foldedProducer(_ producer: NodeIR, into bn: NodeIR, graph: inout GraphIR) -> NodeIR? {
        guard producer.domain.isEmpty, producer.fusedActivation == nil, let (scale, shift) = affine(of: bn, graph: graph) else {
            return nil
        }
        switch producer.opType {
        case "Conv": return foldIntoConv(producer, bn: bn, scale: scale, shift: shift, graph: &graph)
        case "Gemm": return foldIntoGemm(producer, bn: bn, scale: scale, shift: shift, graph: &graph)
        default: return nil
        }
    }

    private static func foldIntoConv(_ conv: NodeIR, bn: NodeIR, scale: [Float], shift: [Float], graph: inout GraphIR) -> NodeIR? {
        guard conv.inputs.count >= 2, let weight = graph.constants[conv.inputs[1]], weight.dtype == .float32,
            weight.rank >= 3, weight.shape[0] == scale.count
        else { return nil }
        let bias = conv.inputs.count > 2 && !conv.inputs[2].isEmpty ? graph.constants[conv.inputs[2]] : nil
        if conv.inputs.count > 2, !conv.inputs[2].isEmpty, bias?.count != scale.count { return nil }
        let newWeight = weight.copy()
        let perChannel = weight.count / scale.count
        for c in scale.indices {
            let row = newWeight.floats + c * perChannel
            for k in 0..<perChannel { row[k] *= scale[c] }
        }
        let oldBias = bias?.floatArray() ?? [Float](repeating: 0, count: scale.count)
        let newBias = scale.indices.map { oldBias[$0] * scale[$0] + shift[$0] }
        var folded = conv
        folded.inputs = [
            conv.inputs[0], addConstant(newWeight, named: "\(conv.name)::bn_weight", to: &graph),
            addConstant(Tensor(floats: newBias, shape: [scale.count]), named: "\(conv.name)::bn_bias", to: &graph),
        ]
        folded.outputs = bn.outputs
        return folded
    }

    private static func foldIntoGemm(_ gemm: NodeIR, bn: NodeIR, scale: [Float], shift: [Float], graph: inout GraphIR) -> NodeIR? {
        guard gemm.inputs.count >= 2, let b = graph.constants[gemm.inputs[1]], b.dtype == .float32, b.rank == 2 else { return nil }
        var transB = 0
        if case .int(let value)? = gemm.attributes["transB"] { transB = value }
        let n = transB == 0 ? b.shape[1] : b.shape[0]
        guard n == scale.count else { return nil }
        var beta: Float = 1
        if case .float(let value)? = gemm.attributes["beta"] { beta = value }
        var oldC = [Float](repeating: 0, count: n)
        if gemm.inputs.count > 2, !gemm.inputs[2].isEmpty {
            guard let c = graph.constants[gemm.inputs[2]], c.dtype == .float32 else { return nil }
            if c.count == n, c.shape.last == n || c.rank == 1 {
                oldC = c.floatArray()
            } else if c.count == 1 {
                oldC = [Float](repeating: c.floats[0], count: n)
            } else {
                return nil
            }
        }
        let newB = b.copy()
        let k = b.count / n
        for column in 0..<n {
            for row in 0..<k {
                let offset = transB == 0 ? row * n + column : column * k + row
                newB.floats[offset] *= scale[column]
            }
        }
        let newC = (0..<n).map { beta * oldC[$0] * scale[$0] + shift[$0] }
        var folded = gemm
        folded.inputs = [
            gemm.inputs[0], addConstant(newB, named: "\(gemm.name)::bn_b", to: &graph),
            addConstant(Tensor(floats: newC, shape: [n]), named: "\(gemm.name)::bn_c", to: &graph),
        ]
        folded.attributes["beta"] = .float(1)
        folded.outputs = bn.outputs
        return folded
    }

    // MARK: Activations

    private static let fusableProducers: Set<String> = ["Conv", "Gemm", "MatMul"]

    private static func fuseActivations(_ graph: inout GraphIR) {
        var index = 0
        while index < graph.nodes.count {
            let node = graph.nodes[index]
            if node.domain.isEmpty, let activation = activation(of: node, graph: graph),
                let producerIndex = soleProducer(of: node.inputs[0], in: graph),
                fusableProducers.contains(graph.nodes[producerIndex].opType),
                graph.nodes[producerIndex].domain.isEmpty,
                graph.nodes[producerIndex].fusedActivation == nil
            {
                graph.nodes[producerIndex].fusedActivation = activation
                graph.nodes[producerIndex].outputs = node.outputs
                graph.nodes.remove(at: index)
                continue
            }
            index += 1
        }
    }

    private static func activation(of node: NodeIR, graph: GraphIR) -> Activation? {
        guard node.outputs.count == 1, !node.inputs.isEmpty else { return nil }
        switch node.opType {
        case "Relu":
            return .relu
        case "Clip":
            var low = -Float.infinity
            var high = Float.infinity
            if case .float(let value)? = node.attributes["min"] { low = value }
            if case .float(let value)? = node.attributes["max"] { high = value }
            for (position, isMin) in [(1, true), (2, false)] where position < node.inputs.count && !node.inputs[position].isEmpty {
                guard let bound = graph.constants[node.inputs[position]], bound.dtype == .float32, bound.count == 1 else { return nil }
                if isMin { low = bound.floats[0] } else { high = bound.floats[0] }
            }
            return .clip(min: low, max: high)
        default:
            return nil
        }
    }

    // MARK: Helpers

    /// The index of the node producing `value`, when that node's only output is read by one node
    /// and is not a graph output (so rewriting it changes nothing else).
    private static func soleProducer(of value: String, in graph: GraphIR) -> Int? {
        guard !graph.outputs.contains(where: { $0.name == value }) else { return nil }
        let readers = graph.nodes.reduce(0) { $0 + $1.inputs.filter { $0 == value }.count }
        guard readers == 1, let index = graph.nodes.firstIndex(where: { $0.outputs.contains(value) }),
            graph.nodes[index].outputs.filter({ !$0.isEmpty }).count == 1
        else { return nil }
        return index
    }

    private static func addConstant(_ tensor: Tensor, named name: String, to graph: inout GraphIR) -> String {
        graph.constants[name] = tensor
        return name
    }
}
