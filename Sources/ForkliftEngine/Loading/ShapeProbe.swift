import Foundation

/// Load-time shape inference. Symbolic dimensions (the batch) are replaced by a concrete probe
/// value and the graph's types are computed node by node; small integer values (shapes and the
/// like) are computed too. Comparing two probes tells which dimensions and values depend on the
/// batch and which are constant.
struct ShapeProbe {
    let symbolValue: Int
    var types: [String: TensorType] = [:]
    var values: [String: Tensor] = [:]
    /// Floating-point operations of one run at this probe's shapes, or nil where unknown.
    var flops: Int? = 0

    /// Largest tensor (in elements) that the probe evaluates at load.
    static let valueLimit = 1 << 16

    init(graph: GraphIR, kernels: [any Kernel], symbolValue: Int) throws(EngineError) {
        self.symbolValue = symbolValue
        for input in graph.inputs {
            guard let shape = input.shape else { continue }
            types[input.name] = TensorType(input.dtype, shape.map { $0.value ?? symbolValue })
        }
        for (name, value) in graph.constants {
            types[name] = value.type
            values[name] = value
        }
        for (node, kernel) in zip(graph.nodes, kernels) {
            try visit(node, kernel)
        }
    }

    private mutating func visit(_ node: NodeIR, _ kernel: any Kernel) throws(EngineError) {
        var inputTypes: [TensorType] = []
        var inputValues: [Tensor?] = []
        for name in node.inputs {
            if name.isEmpty {
                inputTypes.append(.absent)
                inputValues.append(Tensor.absent)
                continue
            }
            guard let type = types[name] else {
                flops = nil
                return
            }
            inputTypes.append(type)
            inputValues.append(values[name])
        }
        let outputTypes: [TensorType]
        do {
            outputTypes = try kernel.outputTypes(inputTypes, values: inputValues)
        } catch .shapeNeedsValue {
            flops = nil
            return
        } catch {
            throw .node(node: node.name, op: node.opType, error)
        }
        for type in outputTypes where Shape.elementCount(type.shape) == nil {
            throw .node(node: node.name, op: node.opType, .invalid("output shape \(Shape.describe(type.shape)) is invalid or overflows"))
        }
        for (name, type) in zip(node.outputs, outputTypes) where !name.isEmpty { types[name] = type }
        flops = flops.map { $0 + kernel.flops(inputTypes, outputTypes) }
        try evaluateIfCheap(node, kernel, inputValues, outputTypes)
    }

    private mutating func evaluateIfCheap(
        _ node: NodeIR, _ kernel: any Kernel, _ inputValues: [Tensor?], _ outputTypes: [TensorType]
    ) throws(EngineError) {
        if let computed = kernel.valuesFromTypes(node.inputs.map { types[$0] ?? .absent }) {
            for (name, value) in zip(node.outputs, computed) where !name.isEmpty { values[name] = value }
            return
        }
        let known = inputValues.compactMap { $0 }
        guard known.count == inputValues.count,
            known.allSatisfy({ $0.count <= Self.valueLimit }),
            outputTypes.allSatisfy({ (Shape.elementCount($0.shape) ?? .max) <= Self.valueLimit })
        else { return }
        do {
            let outputs = try Evaluation.run(kernel, inputs: known)
            for (name, value) in zip(node.outputs, outputs) where !name.isEmpty { values[name] = value }
        } catch {
            throw .node(node: node.name, op: node.opType, error)
        }
    }
}

/// Folds what the probes prove constant: values equal in every probe, and Reshape targets that
/// differ between probes only where they copy the input's own (batch) dimension.
enum ProbeFolding {
    static func fold(_ graph: inout GraphIR, probes: [ShapeProbe]) {
        guard let first = probes.first else { return }
        var remaining: [NodeIR] = []
        for var node in graph.nodes {
            var allConstant = true
            for output in node.outputs where !output.isEmpty {
                if let value = first.values[output], probes.dropFirst().allSatisfy({ $0.values[output].map { same($0, value) } ?? false }) {
                    graph.constants[output] = value
                } else {
                    allConstant = false
                }
            }
            if allConstant { continue }
            if node.opType == "Reshape", node.domain.isEmpty, let target = foldedReshapeTarget(node, probes: probes, graph: graph) {
                let name = "\(node.name)::folded_shape"
                graph.constants[name] = target
                node.inputs[1] = name
            }
            remaining.append(node)
        }
        graph.nodes = remaining
        GraphOrder.removeDeadNodes(&graph)
    }

    private static func same(_ a: Tensor, _ b: Tensor) -> Bool {
        a.dtype == b.dtype && a.shape == b.shape && memcmp(a.raw, b.raw, a.byteCount) == 0
    }

    /// A Reshape whose target is [N, …] where N is the input's batch dimension becomes [0, …].
    private static func foldedReshapeTarget(_ node: NodeIR, probes: [ShapeProbe], graph: GraphIR) -> Tensor? {
        guard probes.count > 1, node.inputs.count == 2, graph.constants[node.inputs[1]] == nil else { return nil }
        if case .int(let allowZero)? = node.attributes["allowzero"], allowZero != 0 { return nil }
        var targets: [[Int]] = []
        var dataShapes: [[Int]] = []
        for probe in probes {
            guard let target = probe.values[node.inputs[1]], target.dtype == .int64,
                let dataType = probe.types[node.inputs[0]]
            else { return nil }
            targets.append(target.integers())
            dataShapes.append(dataType.shape)
        }
        guard let reference = targets.first, targets.allSatisfy({ $0.count == reference.count }) else { return nil }
        var folded = reference
        for position in reference.indices where targets.contains(where: { $0[position] != reference[position] }) {
            // Differs between probes: foldable only when it copies the input's dimension there.
            for (target, dataShape) in zip(targets, dataShapes) {
                guard position < dataShape.count, dataShape[position] == target[position] else { return nil }
            }
            folded[position] = 0
        }
        if folded == reference { return nil }
        return Tensor(int64s: folded.map(Int64.init), shape: [folded.count])
    }
}
