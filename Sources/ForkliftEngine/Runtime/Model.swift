import Foundation

/// An ONNX model, loaded and prepared once: passes run, kernels built, weights packed. Immutable,
/// so any number of sessions (and forked worker processes) share one copy of its weights.
public final class Model: Sendable {
    public let inputs: [ValueSpec]
    public let outputs: [ValueSpec]
    public let summary: ModelSummary
    let plan: ExecutionPlan

    public convenience init(contentsOf url: URL) throws(EngineError) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        try self.init(data: data, baseDirectory: url.deletingLastPathComponent())
    }

    /// `baseDirectory` is where external weight files are looked up.
    public init(data: Data, baseDirectory: URL? = nil) throws(EngineError) {
        var graph = try ModelReader.read(data: data, baseDirectory: baseDirectory)
        let fileSummary = ModelSummary.Counts(graph)
        try GraphOrder.sort(&graph)
        if let node = graph.nodes.first(where: { !OpRegistry.isSupported($0.qualifiedOp) }) {
            throw .unsupportedOp(node: node.name, op: node.opType, domain: node.domain)
        }
        try ConstantFolding.fold(&graph)
        let probeValues = graph.inputs.contains { $0.shape?.contains { $0.value == nil } ?? false } ? [2, 3] : [1]
        var kernels = try Self.kernels(graph)
        let probes: [ShapeProbe]
        do {
            probes = try probeValues.map { (value) throws(EngineError) in
                try ShapeProbe(graph: graph, kernels: kernels, symbolValue: value)
            }
        } catch {
            // A model exported for batch 1 only still loads; it just gets no probe folding.
            guard probeValues.count > 1, (try? ShapeProbe(graph: graph, kernels: kernels, symbolValue: 1)) != nil else { throw error }
            probes = []
        }
        ProbeFolding.fold(&graph, probes: probes)
        let ranks = probes.first?.types.mapValues(\.shape.count) ?? [:]
        Fusion.apply(&graph) { ranks[$0] }
        Self.pruneConstants(&graph)
        kernels = try Self.kernels(graph)
        let finalProbes =
            probes.isEmpty
            ? []
            : try probeValues.map { (value) throws(EngineError) in
                try ShapeProbe(graph: graph, kernels: kernels, symbolValue: value)
            }
        inputs = graph.inputs
        outputs = Self.outputSpecs(graph, probes: finalProbes)
        summary = ModelSummary(file: fileSummary, prepared: graph, probes: finalProbes)
        Self.dropAbsorbedConstants(&graph, kernels: kernels)
        plan = ExecutionPlan(graph: graph, kernels: kernels)
    }

    private static func kernels(_ graph: GraphIR) throws(EngineError) -> [any Kernel] {
        var kernels: [any Kernel] = []
        kernels.reserveCapacity(graph.nodes.count)
        for node in graph.nodes { kernels.append(try OpRegistry.kernel(for: node, graph: graph)) }
        return kernels
    }

    /// Drops constants that no node or output reads any more (e.g. weights replaced by folding).
    private static func pruneConstants(_ graph: inout GraphIR) {
        var used = Set(graph.outputs.map(\.name))
        for node in graph.nodes { used.formUnion(node.inputs) }
        graph.constants = graph.constants.filter { used.contains($0.key) }
    }

    /// Replaces constants that every reader packed into its kernel by data-less placeholders of
    /// the same type, so that packed weights are not held twice.
    private static func dropAbsorbedConstants(_ graph: inout GraphIR, kernels: [any Kernel]) {
        var readers: [String: Int] = [:]
        var absorbers: [String: Int] = [:]
        for output in graph.outputs { readers[output.name, default: 0] += 1 }
        for (node, kernel) in zip(graph.nodes, kernels) {
            for input in node.inputs where !input.isEmpty { readers[input, default: 0] += 1 }
            for index in kernel.absorbedInputs where index < node.inputs.count { absorbers[node.inputs[index], default: 0] += 1 }
        }
        for (name, count) in absorbers where readers[name] == count {
            if let value = graph.constants[name] { graph.constants[name] = value.shapeOnly() }
        }
    }

    /// Output shapes as inferred: a dimension that follows the probe value is the batch dimension.
    private static func outputSpecs(_ graph: GraphIR, probes: [ShapeProbe]) -> [ValueSpec] {
        let symbol = graph.inputs.lazy.compactMap { $0.shape?.first(where: { $0.value == nil })?.description }.first ?? "N"
        return graph.outputs.map { declared in
            let types = probes.compactMap { $0.types[declared.name] }
            guard types.count == probes.count, let first = types.first, types.allSatisfy({ $0.shape.count == first.shape.count }) else {
                return declared
            }
            let dims: [Dim] = first.shape.indices.map { axis in
                let sizes = types.map { $0.shape[axis] }
                if sizes.allSatisfy({ $0 == sizes[0] }) { return .fixed(sizes[0]) }
                return zip(sizes, probes).allSatisfy({ $0 == $1.symbolValue }) ? .symbolic(symbol) : .symbolic("?")
            }
            return ValueSpec(name: declared.name, dtype: first.dtype, shape: dims)
        }
    }

    /// True when every input's first dimension is symbolic, so requests can be stacked in a batch.
    public var isBatchable: Bool {
        !inputs.isEmpty && inputs.allSatisfy { spec in spec.shape?.first.map { $0.value == nil } ?? false }
    }
}

/// What `inspect` reports about a model.
public struct ModelSummary: Sendable {
    /// Op counts, parameters and unsupported ops of the file as written.
    public struct Counts: Sendable {
        public let opCounts: [String: Int]
        public let unsupportedOps: [String]
        public let parameterCount: Int
        public let parameterBytes: Int

        init(_ graph: GraphIR) {
            var counts: [String: Int] = [:]
            for node in graph.nodes { counts[node.qualifiedOp, default: 0] += 1 }
            opCounts = counts
            unsupportedOps = counts.keys.filter { !OpRegistry.isSupported($0) }.sorted()
            parameterCount = graph.constants.values.reduce(0) { $0 + $1.count }
            parameterBytes = graph.constants.values.reduce(0) { $0 + $1.byteCount }
        }
    }

    public let file: Counts
    /// Op counts after folding and fusion: what actually runs.
    public let preparedOpCounts: [String: Int]
    /// Floating-point operations per sample (per run for models without a batch dimension).
    public let flopsPerSample: Int?

    init(file: Counts, prepared: GraphIR, probes: [ShapeProbe]) {
        self.file = file
        var counts: [String: Int] = [:]
        for node in prepared.nodes {
            let label =
                node.fusedActivation == nil ? node.qualifiedOp : node.qualifiedOp + "+" + (node.fusedActivation == .relu ? "Relu" : "Clip")
            counts[label, default: 0] += 1
        }
        preparedOpCounts = counts
        if probes.count == 2, let small = probes[0].flops, let large = probes[1].flops {
            flopsPerSample = (large - small) / (probes[1].symbolValue - probes[0].symbolValue)
        } else {
            flopsPerSample = probes.first?.flops
        }
    }

    /// Reads a model file's structure without preparing it, so that unsupported ops can be listed.
    public static func inspectFile(_ url: URL) throws(EngineError) -> (inputs: [ValueSpec], outputs: [ValueSpec], counts: Counts) {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw .unreadableFile(path: url.path, reason: error.localizedDescription)
        }
        let graph = try ModelReader.read(data: data, baseDirectory: url.deletingLastPathComponent())
        return (graph.inputs, graph.outputs, Counts(graph))
    }
}
