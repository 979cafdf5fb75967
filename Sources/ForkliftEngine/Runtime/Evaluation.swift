/// Runs one kernel outside a session: constant folding and load-time probes use it.
enum Evaluation {
    /// Computes a kernel's outputs into fresh tensors. Absent optional inputs are `Tensor.absent`.
    static func run(_ kernel: any Kernel, inputs: [Tensor], pool: BufferPool? = nil) throws(KernelError) -> [Tensor] {
        let types = try kernel.outputTypes(inputs.map(\.type), values: inputs.map { $0 })
        if kernel.aliasesInput {
            guard let source = inputs.first, let type = types.first, Shape.elementCount(type.shape) == source.count else {
                throw .invalid("reshaping changes the element count")
            }
            return [source.reshaped(type.shape)]
        }
        var outputs: [Tensor] = []
        outputs.reserveCapacity(types.count)
        for type in types {
            guard let count = Shape.elementCount(type.shape) else {
                throw .invalid("output shape \(Shape.describe(type.shape)) is invalid or too large")
            }
            if let pool {
                outputs.append(try pool.tensor(dtype: type.dtype, shape: type.shape, count: count))
            } else {
                guard let storage = TensorStorage.allocate(count * type.dtype.byteSize) else {
                    throw .invalid("cannot allocate an output of shape \(Shape.describe(type.shape))")
                }
                outputs.append(Tensor(dtype: type.dtype, shape: type.shape, count: count, storage: storage))
            }
        }
        try kernel.run(inputs, outputs)
        return outputs
    }
}

/// Evaluates nodes whose inputs are all constants, once, at load.
enum ConstantFolding {
    static func fold(_ graph: inout GraphIR) throws(EngineError) {
        var remaining: [NodeIR] = []
        for node in graph.nodes {
            let present = node.inputs.filter { !$0.isEmpty }
            guard !present.isEmpty, present.allSatisfy({ graph.constants[$0] != nil }) else {
                remaining.append(node)
                continue
            }
            let kernel = try OpRegistry.kernel(for: node, graph: graph)
            let inputs = node.inputs.map { $0.isEmpty ? Tensor.absent : graph.constants[$0] ?? .absent }
            let outputs: [Tensor]
            do {
                outputs = try Evaluation.run(kernel, inputs: inputs)
            } catch {
                throw .node(node: node.name, op: node.opType, error)
            }
            for (name, value) in zip(node.outputs, outputs) where !name.isEmpty {
                graph.constants[name] = value
            }
        }
        graph.nodes = remaining
    }
}
