/// Every operator the engine implements, keyed by `NodeIR.qualifiedOp`.
enum OpRegistry {
    static let factories: [String: KernelFactory] = {
        var all: [String: KernelFactory] = [:]
        let groups = [
            ElementwiseOps.factories, LinearOps.factories, ConvOps.factories, ReductionOps.factories,
            ShapeOps.factories, MLOps.factories,
        ]
        for group in groups { all.merge(group) { first, _ in first } }
        return all
    }()

    /// Ops handled while reading the model rather than by a kernel.
    static let readerOps: Set<String> = ["Constant"]

    static func isSupported(_ qualifiedOp: String) -> Bool {
        factories[qualifiedOp] != nil || readerOps.contains(qualifiedOp)
    }

    /// Builds the kernel for a node whose constant inputs are in `constants`.
    static func kernel(for node: NodeIR, graph: GraphIR) throws(EngineError) -> any Kernel {
        guard let factory = factories[node.qualifiedOp] else {
            throw .unsupportedOp(node: node.name, op: node.opType, domain: node.domain)
        }
        let context = NodeContext(
            node: node, opset: graph.opset(for: node.domain),
            constants: node.inputs.map { $0.isEmpty ? nil : graph.constants[$0] })
        do {
            return try factory(context)
        } catch {
            throw .node(node: node.name, op: node.opType, error)
        }
    }
}
